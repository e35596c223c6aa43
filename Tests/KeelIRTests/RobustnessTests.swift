import KeelIR
import XCTest

/// Odd inputs and attributes must give types or Diagnostics, never traps.
final class RobustnessTests: XCTestCase {
    func testNoOpTrapsOnOddShapesOrAttributes() {
        let shapes: [TensorType?] = [
            f32(), f32(0), f32("N"), f32("N", 0, 0, 0), f32(1, 1, 1, 1), f32("N", 7, 7, 512), f32(-3, 2),
            f32("N", "H", "W", 3), f32(Dim.known(Int.max), 2), TensorType(.int64, [3]), nil,
        ]
        let oddValues: [AttributeValue] = [
            .int(-5), .int(Int.max), .int(Int.min), .ints([]), .ints([-1, 0]), .ints([Int.max, Int.min]),
            .ints([0, 0, 0, 0]), .string("x"), .float(.nan), .floats([]), .bool(true), .strings(["a"]),
        ]
        var outcomes = 0
        for schema in OpRegistry.all {
            var attributeSets: [[String: AttributeValue]] = [[:]]
            for spec in schema.attributes {
                for value in oddValues { attributeSets.append([spec.name: value]) }
            }
            for attributes in attributeSets {
                for first in shapes {
                    for second in [f32(3, 3, 3, 64), f32(512, 10), f32(0), f32(Dim.known(Int.max), 3, 3, Dim.known(Int.max)), nil, first] {
                        let count = max(schema.inputs.count, 2)
                        let types = ([first, second] + Array(repeating: second, count: count)).prefix(count)
                        let node = Node(name: "n", op: schema.kind, inputs: (0..<count).map { "v\($0)" }, outputs: ["n"],
                                        attributes: Attributes(attributes))
                        _ = try? inferOutputTypes(of: node, inputTypes: Array(types))
                        outcomes += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(outcomes, 1000)
    }

    func testVerifierRejectsNegativeExtents() {
        var graph = tinyGraph()
        graph.inputs[0].type = f32("N", -8, 8, 3)
        assertDiagnostic("input 'image' has a negative extent: [N,-8,8,3]") { try verify(graph) }
    }
}
