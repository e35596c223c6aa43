import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// ONNX ScatterND: the examples of the ONNX operator documentation (expected values from there),
/// run by the kernel on a run-time input and evaluated by the reference that constant folding uses.
final class ScatterNDTests: XCTestCase {
    private func model(_ text: String) throws -> CompiledModel {
        try CompiledModel(graph: try ShapeInference().run(parseIR(text)).graph, context: ExecutionContext(threads: 1))
    }

    /// Example 1: single elements. data [1…8], indices [[4],[3],[1],[7]], updates [9,10,11,12].
    func testElementUpdatesOnARunTimeInput() throws {
        let model = try model("""
            graph g
            input %x: f32[8]
            const @indices: i64[4,1] literal = [4, 3, 1, 7]
            const @updates: f32[4] literal = [9, 10, 11, 12]
            %y = scatter_nd(%x, @indices, @updates) : f32[8]
            output y = %y
            """)
        let result = try model.run(["x": try Tensor(shape: [8], values: [1, 2, 3, 4, 5, 6, 7, 8])])
        XCTAssertEqual(result["y"]?.values, [1, 11, 3, 10, 9, 6, 7, 12])
    }

    /// Example 2: whole slices of a [4,4,4] tensor (indices [[0],[2]]), with the update slices
    /// the documentation gives; the other two slices keep the data.
    func testSliceUpdates() throws {
        let data: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1,
                             1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1,
                             8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8,
                             8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8]
        let updates: [Float] = [5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8,
                                1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]
        let model = try model("""
            graph g
            input %x: f32[4,4,4]
            const @indices: i64[2,1] literal = [0, 2]
            const @updates: f32[2,4,4] literal = [\(updates.map { "\(Int($0))" }.joined(separator: ", "))]
            %y = scatter_nd(%x, @indices, @updates) : f32[4,4,4]
            output y = %y
            """)
        let result = try model.run(["x": try Tensor(shape: [4, 4, 4], values: data)])
        XCTAssertEqual(result["y"]?.values, Array(updates[0..<16]) + Array(data[16..<32]) + Array(updates[16..<32]) + Array(data[48..<64]))
    }

    /// reduction "add" sums every update that lands on an element (the documentation's
    /// "add" example: indices [[0],[0]] into the first slice); "max" keeps the larger; negative
    /// indices count from the end.
    func testReductionsAndNegativeIndices() throws {
        let model = try model("""
            graph g
            input %x: f32[3,2]
            const @indices: i64[3,1] literal = [0, 0, -1]
            const @updates: f32[3,2] literal = [1, 2, 10, 20, -5, 5]
            %sum = scatter_nd(%x, @indices, @updates) {reduction="add"} : f32[3,2]
            %max = scatter_nd(%x, @indices, @updates) {reduction="max"} : f32[3,2]
            output sum = %sum
            output max = %max
            """)
        let result = try model.run(["x": try Tensor(shape: [3, 2], values: [1, 1, 2, 2, 3, 3])])
        XCTAssertEqual(result["sum"]?.values, [12, 23, 2, 2, -2, 8])
        XCTAssertEqual(result["max"]?.values, [10, 20, 2, 2, 3, 5])
    }

    /// A ScatterND of constants folds at compile time (the attention masks PyTorch's Swin builds):
    /// the same values through the reference evaluation, and no node left.
    func testConstantScatterFolds() throws {
        let graph = try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[8]
            const @data: f32[8] literal = [1, 2, 3, 4, 5, 6, 7, 8]
            const @indices: i64[4,1] literal = [4, 3, 1, 7]
            const @updates: f32[4] literal = [9, 10, 11, 12]
            %s = scatter_nd(@data, @indices, @updates) : f32[8]
            %y = add(%x, %s) : f32[8]
            output y = %y
            """)).graph
        let folded = try ConstantFolding().run(graph).graph
        XCTAssertEqual(folded.nodes.map(\.op), [.add])
        XCTAssertEqual(folded.constants["s"]?.data?.floats(), [1, 11, 3, 10, 9, 6, 7, 12])
    }

    /// Bad index tuples are refused when the graph is checked, naming the index and the axis.
    func testOutOfRangeIndexIsAShapeError() throws {
        XCTAssertThrowsError(try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[4,2]
            const @indices: i64[1,1] literal = [4]
            const @updates: f32[1,2] literal = [1, 2]
            %y = scatter_nd(%x, @indices, @updates) : f32[4,2]
            output y = %y
            """))) { error in
            XCTAssertTrue("\(error)".contains("index 4 is out of range for axis 0"), "\(error)")
        }
        XCTAssertThrowsError(try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[4,2]
            const @indices: i64[1,1] literal = [1]
            const @updates: f32[1,3] literal = [1, 2, 3]
            %y = scatter_nd(%x, @indices, @updates) : f32[4,2]
            output y = %y
            """))) { error in
            XCTAssertTrue("\(error)".contains("must be f32[1,2]"), "\(error)")
        }
    }
}
