import KeelIR
import KeelPasses
import XCTest

/// Keras's MobileNetV3 activations as tf2onnx writes them: relu6(x + 3) · (1/6) is hard-sigmoid,
/// and x times it hard-swish.
final class HardSwishRecognitionTests: XCTestCase {
    private func graph(bound: Float, scale: String, multiplyByX: Bool) throws -> Graph {
        let product = multiplyByX ? "%y = mul(%x, %h) : f32[N,4,4,8]\noutput y = %y" : "output y = %h"
        return try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,4,4,8]
            const @three: f32[] literal = [3]
            const @scale: f32[] literal = [\(scale)]
            %a = add(%x, @three) : f32[N,4,4,8]
            %c = clip(%a) {max=\(bound), min=0.0} : f32[N,4,4,8]
            %h = mul(%c, @scale) : f32[N,4,4,8]
            \(product)
            """)).graph
    }

    func testHardSwishBecomesOneNode() throws {
        let graph = try graph(bound: 6, scale: "0.16666667", multiplyByX: true)
        let result = try optimized(graph, [HardSwishRecognition()])
        XCTAssertEqual(result.graph.ops, [.hardSwish])
        XCTAssertEqual(result.graph.nodes.first?.inputs, ["x"])
        XCTAssertEqual(result.graph.outputs.first?.value, "y")
        try assertEquivalent(graph, result.graph)
    }

    /// Without the product by x (the squeeze-excitation gate) it is hard-sigmoid with alpha 1/6.
    func testHardSigmoidAlone() throws {
        let graph = try graph(bound: 6, scale: "0.16666667", multiplyByX: false)
        let result = try optimized(graph, [HardSwishRecognition()])
        XCTAssertEqual(result.graph.ops, [.hardSigmoid])
        XCTAssertEqual(result.graph.nodes.first?.attributes["beta"], .float(0.5))
        try assertEquivalent(graph, result.graph)
    }

    /// Another bound or scale is another function: kept.
    func testOtherConstantsAreKept() throws {
        for (bound, scale) in [(Float(5), "0.16666667"), (6, "0.2")] {
            let graph = try graph(bound: bound, scale: scale, multiplyByX: true)
            XCTAssertEqual(try optimized(graph, [HardSwishRecognition()]).graph.ops, [.add, .clip, .mul, .mul])
        }
    }
}
