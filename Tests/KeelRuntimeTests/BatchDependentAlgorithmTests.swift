import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// A 12×12 layer has 9 Winograd tiles an image: im2col at batch 1, Winograd at batch 4. Whichever
/// batch a model plans first, the filter's original is released once prepared, and the other
/// batch still runs, from the form prepared first or one derived from it.
final class BatchDependentAlgorithmTests: XCTestCase {
    private func graph() throws -> Graph {
        let source = """
        model tiles
        input image: f32[N, 12, 12, 16]
        body = conv2d(16, 3, padding: same, activation: relu)
        output body
        """
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: "tiles.keel")).graph
        for (name, constant) in graph.constants { graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 9) }
        return graph
    }

    private func image(batch: Int) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: UInt64(batch))
        let count = batch * 12 * 12 * 16
        return ["image": try Tensor(shape: [batch, 12, 12, 16], values: (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) })]
    }

    private func fresh(_ graph: Graph, batch: Int) throws -> [String: Tensor] {
        try CompiledModel(graph: graph, context: ExecutionContext(threads: 1)).run(try image(batch: batch))
    }

    func testSmallBatchFirstDerivesWinogradFromThePackedFilter() throws {
        let graph = try graph()
        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        _ = try model.run(try image(batch: 1))
        XCTAssertEqual(try model.prepared.filters().map(\.key), ["conv:body/kernel"])
        XCTAssertNil(model.prepared.original("body/kernel"), "the original goes once packed")
        // The packed filter holds the same floats, so the transform gives the same weights.
        XCTAssertEqual(try model.run(try image(batch: 4)), try fresh(graph, batch: 4))
        XCTAssertEqual(try model.prepared.filters().map(\.key), ["conv:body/kernel", "winograd:body/kernel"])
    }

    func testLargeBatchFirstKeepsWinogradForSmallBatches() throws {
        let graph = try graph()
        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 4)), try fresh(graph, batch: 4))
        XCTAssertNil(model.prepared.original("body/kernel"))
        // Batch 1 would take im2col, but only the Winograd form is left: it runs on that.
        let actual = try XCTUnwrap(try model.run(try image(batch: 1))["body"]).values
        XCTAssertEqual(try model.prepared.filters().map(\.key), ["winograd:body/kernel"])
        let expected = try XCTUnwrap(try fresh(graph, batch: 1)["body"]).values
        let scale = expected.map { abs($0) }.max() ?? 1
        let difference = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(difference / scale, 1e-5)
    }
}
