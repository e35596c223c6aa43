import Foundation
import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// An 8×8 layer has 4 Winograd tiles an image: im2col at batch 1, Winograd at batch 4. The
/// prepare phase packs the filter for batch 1 before any plan exists and releases the original;
/// a batch-4 plan derives the Winograd form from the packed one. Whichever batch runs first,
/// each batch gives the same bits as a model compiled for that batch alone.
final class BatchDependentAlgorithmTests: XCTestCase {
    private func graph(batch: String = "N") throws -> Graph {
        let source = """
        model tiles
        input image: f32[\(batch), 8, 8, 16]
        body = conv2d(16, 3, padding: same, activation: relu)
        output body
        """
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: "tiles.keel")).graph
        for (name, constant) in graph.constants { graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 9) }
        return graph
    }

    private func image(batch: Int) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: UInt64(batch))
        let count = batch * 8 * 8 * 16
        return ["image": try Tensor(shape: [batch, 8, 8, 16], values: (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) })]
    }

    /// A model whose batch is fixed: its filter is prepared from the original for that batch's algorithm.
    private func fixed(batch: Int) throws -> [String: Tensor] {
        let model = try CompiledModel(graph: try graph(batch: String(batch)), context: ExecutionContext(threads: 1))
        return try model.run(try image(batch: batch))
    }

    func testWeightsArePreparedBeforeAnyPlan() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["conv:body/kernel"])
        XCTAssertNil(model.prepared.original("body/kernel"), "the original goes once packed")
        XCTAssertEqual(model.planCount(for: ["N": 1]), 0)
        let fixedFour = try CompiledModel(graph: try graph(batch: "4"), context: ExecutionContext(threads: 1))
        XCTAssertEqual(fixedFour.prepared.filters.map(\.key), ["winograd:body/kernel"])
    }

    func testSmallBatchFirstDerivesWinogradFromThePackedFilter() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 1)), try fixed(batch: 1))
        // The packed filter holds the same floats, so the transform gives the same weights.
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["conv:body/kernel", "winograd:body/kernel"])
    }

    func testLargeBatchFirstStillRunsSmallBatchesOnIm2col() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        XCTAssertEqual(try model.run(try image(batch: 1)), try fixed(batch: 1))
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), ["im2col"])
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 4]).map(\.choice.algorithm), ["winograd"])
    }

    /// A file holding a filter only in a form the layer's choice cannot read or derive from (not
    /// something `keel compile` writes: here the Winograd form of a batch-4 model under a graph
    /// whose batch 1 runs im2col) is refused when planned, naming the filter.
    func testAFileHoldingOnlyAFormTheLayerCannotUseIsRefused() throws {
        let winogradOnly = try CompiledModel(graph: try graph(batch: "4"), context: ExecutionContext(threads: 1)).preparedFilters()
        XCTAssertEqual(winogradOnly.map(\.kind), [.winograd])
        var symbolic = try graph()
        symbolic.constants["body/kernel"]?.data = nil
        let path = NSTemporaryDirectory() + "keel-winograd-only-\(getpid()).keelc"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CompiledArtifact.write(symbolic, prepared: winogradOnly, provenance: .test, to: path)
        let contents = try CompiledArtifact.read(path: path)
        let model = try CompiledModel(graph: contents.graph, prepared: contents.prepared, context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        XCTAssertThrowsError(try model.run(try image(batch: 1))) { error in
            XCTAssertEqual("\(error)".contains("its filter 'body/kernel' is held only in the winograd form, which the packed form "
                                               + "cannot be made from; compile the model again"), true, "\(error)")
        }
    }
}
