import KeelIR
import KeelPasses
import XCTest

final class MatMulToDenseTests: XCTestCase {
    /// tf2onnx's Keras Dense: MatMul by a constant, Add of the bias, Relu -> one dense.
    func testMatMulAddReluBecomesOneDense() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 6], layout: nil)
        builder.literal("W", [6, 4])
        builder.literal("b", [4])
        builder.layer("matmul", .matmul, inputs: ["input", "W"])
        builder.layer("add", .add, inputs: ["matmul", "b"])
        builder.layer("relu", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [MatMulToDense(), EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.dense])
        XCTAssertEqual(result.graph.node(named: "matmul")?.inputs, ["input", "W", "matmul/bias"])
        XCTAssertEqual(result.graph.node(named: "matmul")?.attributes, Attributes(["activation": .string("relu")]))
        try assertEquivalent(graph, result.graph)
    }

    func testMatMulOfTwoComputedValuesStays() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4], layout: nil)
        builder.layer("square", .matmul, inputs: ["input", "input"])
        builder.output("y")
        let graph = try prepared(builder)
        XCTAssertEqual(try optimized(graph, [MatMulToDense()]).graph, graph)
    }

    func testGoldenMatMulByAConstantBecomesADenseWithTheDefaultInOutLayout() throws {
        try assertRewrite(MatMulToDense(), """
            graph g
            input %x: f32[N,6]
            const @w: f32[6,4] literal frozen
            %m = matmul(%x, @w) : f32[N,4]  # g.keel:3:1
            output y = %m
            """, """
            graph g
            input %x: f32[N,6]
            const @w: f32[6,4] literal frozen
            %m = dense(%x, @w) : f32[N,4]  # g.keel:3:1
            output y = %m

            """)
    }

}
