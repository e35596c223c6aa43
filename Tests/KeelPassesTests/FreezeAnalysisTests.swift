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
}
