import KeelIR
import KeelPasses
import XCTest

final class FreezeAnalysisTests: XCTestCase {
    /// Frozen conv -> pool (a graph output too) -> trainable dense; a trainable side branch reads
    /// the input directly (the input itself is not a cut point).
    func testFrozenValuesReadByTrainableNodesAndFrozenOutputsAreTheBoundary() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 2]), (.bias, [2])], trainable: false, ["padding": .string("same")])
        builder.layer("pool", .maxPool2d)
        builder.output("features")
        builder.layer("flatten", .flatten)
        builder.layer("head", .dense, parameters: [(.kernel, [8, 2])])
        builder.output("logits")
        builder.layer("side", .conv2d, parameters: [(.kernel, [1, 1, 3, 2])], inputs: ["input"])
        builder.output("side")
        let analysis = FreezeAnalysis(try ShapeInference().run(builder.graph).graph)
        XCTAssertEqual(analysis.frozenNodes, ["conv", "pool", "flatten"])
        XCTAssertEqual(analysis.boundary, ["pool", "flatten"])
        XCTAssertEqual(try FreezeMarking().run(builder.graph).statistic, "3 of 5 nodes frozen; feature boundary: 'pool', 'flatten'")
    }

    /// An analysis: the graph comes out unchanged.
    func testGoldenFreezeMarkingLeavesTheGraphAsItIs() throws {
        let graph = """
            graph g
            input %x: f32[N,4,4,3] nhwc
            const @c/kernel: f32[3,3,3,2] kernel frozen
            const @d/kernel: f32[32,2] kernel
            %c = conv2d(%x, @c/kernel) {padding="same"} : f32[N,4,4,2]
            %f = flatten(%c) : f32[N,32]
            %d = dense(%f, @d/kernel) : f32[N,2]
            output y = %d

            """
        try assertRewrite(FreezeMarking(), graph, graph)
        XCTAssertEqual(try FreezeMarking().run(try parseIR(graph)).statistic, "2 of 3 nodes frozen; feature boundary: 'f'")
    }

}
