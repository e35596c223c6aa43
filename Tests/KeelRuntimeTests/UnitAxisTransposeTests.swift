import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// At batch 1 a transpose that moves only the batch axis (PyTorch's token-first attention) keeps
/// every element in place: the plan reads its input's buffer instead of copying. At batch 2 the
/// same node moves data and runs.
final class UnitAxisTransposeTests: XCTestCase {
    private func model() throws -> CompiledModel {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,3,2]
            %t = transpose(%x) {perm=[1,0,2]} : f32[3,N,2]
            %y = add(%t, %t) : f32[3,N,2]
            output t = %t
            output y = %y
            """)).graph
        return try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
    }

    func testBatchOneReadsInPlaceAndBatchTwoTransposes() throws {
        let model = try model()
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.node), ["y"])
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 2]).map(\.node), ["t", "y"])

        let one = try model.run(["x": try Tensor(shape: [1, 3, 2], values: [1, 2, 3, 4, 5, 6])])
        XCTAssertEqual(one["t"]?.shape, [3, 1, 2])
        XCTAssertEqual(one["t"]?.values, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(one["y"]?.values, [2, 4, 6, 8, 10, 12])

        // x[n][j][k] = 10n + 2j + k; t[j][n][k] = x[n][j][k], written out by hand.
        let two = try model.run(["x": try Tensor(shape: [2, 3, 2], values: [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15])])
        XCTAssertEqual(two["t"]?.shape, [3, 2, 2])
        XCTAssertEqual(two["t"]?.values, [0, 1, 10, 11, 2, 3, 12, 13, 4, 5, 14, 15])
        XCTAssertEqual(two["y"]?.values, [0, 2, 20, 22, 4, 6, 24, 26, 8, 10, 28, 30])
    }

    func testATransposeOfTwoLongAxesStillRuns() throws {
        XCTAssertFalse(PlanBuilder.movesOnlyUnitAxes(
            Node(name: "t", op: .transpose, inputs: ["x"], outputs: ["t"], attributes: Attributes(["perm": .ints([0, 2, 1])])),
            shapes: ["x": [1, 3, 2]], storage: { _ in .fp32 }))
        XCTAssertTrue(PlanBuilder.movesOnlyUnitAxes(
            Node(name: "t", op: .transpose, inputs: ["x"], outputs: ["t"], attributes: Attributes(["perm": .ints([0, 2, 3, 1])])),
            shapes: ["x": [2, 768, 1, 1]], storage: { _ in .fp32 }))
    }
}
