import Foundation
import KeelFormat
import KeelIR
import KeelKernels
import KeelPasses
import XCTest
@testable import KeelRuntime

/// A 7×7 layer has 16 small (F(2×2)) Winograd tiles an image: im2col at batch 1, Winograd at
/// batch 4 (at 8×8, with AVX2 or AVX-512, it takes the tile at batch 1 too). The prepare phase packs the filter for batch 1 before any plan exists and releases
/// the original; a batch-4 plan derives the Winograd form from the packed one. Whichever batch
/// runs first, each batch gives the same bits as a model compiled for that batch alone.
final class BatchDependentAlgorithmTests: XCTestCase {
    private func graph(batch: String = "N", size: Int = 7) throws -> Graph {
        let source = """
        model tiles
        input image: f32[\(batch), \(size), \(size), 16]
        body = conv2d(32, 3, padding: same, activation: relu)
        output body
        """
        return try seededGraph(source, path: "tiles.keel", seed: 9)
    }

    private func image(batch: Int, size: Int = 7, channels: Int = 16) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: UInt64(batch))
        let count = batch * size * size * channels
        return ["image": try Tensor(shape: [batch, size, size, channels],
                                    values: (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) })]
    }

    /// A model whose batch is fixed: its filter is prepared from the original for that batch's algorithm.
    private func fixed(batch: Int) throws -> [String: Tensor] {
        let model = try CompiledModel(graph: try graph(batch: String(batch)), context: ExecutionContext(threads: 1))
        return try model.run(try image(batch: batch))
    }

    /// Batch 1 of a model holding the filter in the small tile's form alone runs that tile, within
    /// Winograd's tolerance of im2col on a model compiled for batch 1.
    private func assertBatchOneRunsOnTheSmallTile(_ model: CompiledModel, line: UInt = #line) throws {
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), ["winograd2x2"], line: line)
        let actual = try XCTUnwrap(try model.run(try image(batch: 1)).values.first)
        let expected = try XCTUnwrap(try fixed(batch: 1).values.first)
        let error = zip(actual.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(error, 1e-5 * max(expected.values.map { abs($0) }.max() ?? 1, 1), line: line)
    }

    func testWeightsArePreparedBeforeAnyPlan() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["conv:body/kernel"])
        XCTAssertNil(model.prepared.original("body/kernel"), "the original goes once packed")
        XCTAssertEqual(model.planCount(for: ["N": 1]), 0)
        let fixedFour = try CompiledModel(graph: try graph(batch: "4"), context: ExecutionContext(threads: 1))
        XCTAssertEqual(fixedFour.prepared.filters.map(\.key), ["winograd2x2:body/kernel"])
    }

    func testSmallBatchFirstDerivesWinogradFromThePackedFilter() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 1)), try fixed(batch: 1))
        // The packed filter holds the same floats, so the transform gives the same weights.
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["conv:body/kernel", "winograd2x2:body/kernel"])
    }

    func testLargeBatchFirstStillRunsSmallBatchesOnIm2col() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        XCTAssertEqual(try model.run(try image(batch: 1)), try fixed(batch: 1))
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), ["im2col"])
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 4]).map(\.choice.algorithm), ["winograd2x2"])
    }

    /// A caller that says which batch it will run (`keel run` and `bench` read it from the input)
    /// gets the filter prepared for that batch alone, the original released; that batch gives
    /// the bits of a model compiled for it, and batch 1 still runs, on the tile held, within
    /// Winograd's tolerance of im2col. A fixed batch is prepared for itself whatever is asked.
    func testWeightsArePreparedForTheBatchTheCallerRuns() throws {
        let model = try CompiledModel(graph: try graph(), context: ExecutionContext(threads: 1, preparedBatch: 4))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["winograd2x2:body/kernel"])
        XCTAssertNil(model.prepared.original("body/kernel"))
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        try assertBatchOneRunsOnTheSmallTile(model)
        XCTAssertEqual(model.prepared.filters.map(\.key), ["winograd2x2:body/kernel"], "no second form")
        let fixedOne = try CompiledModel(graph: try graph(batch: "1"), context: ExecutionContext(threads: 1, preparedBatch: 4))
        XCTAssertEqual(fixedOne.prepared.filters.map(\.key), ["conv:body/kernel"])
    }

    /// A file holding a filter only in a Winograd form (not something `keel compile` writes: here
    /// the small tile's form of a batch-4 model under a graph whose batch 1 runs im2col) runs
    /// every batch on that tile; asked for bf16, which no Winograd form can give, it is refused
    /// when planned, naming the filter.
    func testAFileHoldingOnlyAWinogradFormRunsItOrIsRefused() throws {
        let winogradOnly = try CompiledModel(graph: try graph(batch: "4"), context: ExecutionContext(threads: 1)).preparedFilters()
        XCTAssertEqual(winogradOnly.map(\.kind), [.winograd2x2])
        var symbolic = try graph()
        symbolic.constants["body/kernel"]?.data = nil
        let path = NSTemporaryDirectory() + "keel-winograd-only-\(getpid()).keelc"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CompiledArtifact.write(symbolic, prepared: winogradOnly, provenance: .test, to: path)
        let contents = try CompiledArtifact.read(path: path)
        let model = try CompiledModel(graph: contents.graph, prepared: contents.prepared, context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.run(try image(batch: 4)), try fixed(batch: 4))
        try assertBatchOneRunsOnTheSmallTile(model)
        guard BF16Convolution.isAvailable else { return }
        let bf16 = try CompiledModel(graph: contents.graph, prepared: contents.prepared,
                                     context: ExecutionContext(threads: 1, precision: .bf16))
        XCTAssertThrowsError(try bf16.run(try image(batch: 1))) { error in
            XCTAssertEqual("\(error)".contains("its filter 'body/kernel' is held only in the winograd2x2 form, which the packed form "
                                               + "cannot be made from; compile the model again"), true, "\(error)")
        }
    }

    /// A 14×14 layer takes the small tile at batch 1 and the large one at batch 8. A symbolic
    /// model prepared at batch 1 holds the small tile's form alone and keeps running it at batch
    /// 8 (instead of failing to derive the large form, or holding the filter twice), within
    /// Winograd's tolerance of a model compiled for batch 8 on the large tile.
    func testASmallTileFilterStaysOnTheSmallTileAtLargerBatches() throws {
        let model = try CompiledModel(graph: try graph(size: 14), context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), ["winograd2x2"])
        _ = try model.run(try image(batch: 1, size: 14))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["winograd2x2:body/kernel"])
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 8]).map(\.choice.algorithm), ["winograd2x2"])
        let actual = try XCTUnwrap(try model.run(try image(batch: 8, size: 14)).values.first)
        let fixedEight = try CompiledModel(graph: try graph(batch: "8", size: 14), context: ExecutionContext(threads: 1))
        XCTAssertEqual(try fixedEight.kernelChoices(bindings: [:]).map(\.choice.algorithm), ["winograd"])
        let expected = try XCTUnwrap(try fixedEight.run(try image(batch: 8, size: 14)).values.first)
        let scale = expected.values.map { abs($0) }.max() ?? 1
        let error = zip(actual.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(error, 1e-5 * max(scale, 1))
    }

    /// A 1×3 layer on 8×8 with 64 channels runs im2col at batch 1 and line Winograd at batch 8, and
    /// so does a 5×5 one on F(4×4, 5×5). Prepared for batch 8 (the original released), batch 1 keeps
    /// the Winograd form instead of failing for want of the packed one: a partial last batch of
    /// `keel extract --batch 8` runs on what is held.
    func testLineWinogradFormHeldAloneServesEveryBatch() throws {
        try heldAloneServesEveryBatch(kernel: "(1, 3)", form: "linewinograd", algorithm: "line_winograd")
    }

    func testSquareWinogradFormHeldAloneServesEveryBatch() throws {
        try heldAloneServesEveryBatch(kernel: "(5, 5)", form: "squarewinograd", algorithm: "winograd5x5")
    }

    private func heldAloneServesEveryBatch(kernel: String, form: String, algorithm: String) throws {
        func graph(_ batch: String) throws -> Graph {
            let source = """
            model line
            input image: f32[\(batch), 8, 8, 64]
            body = conv2d(64, \(kernel), padding: same, activation: relu)
            output body
            """
            return try seededGraph(source, path: "line.keel", seed: 9)
        }
        let symbolic = try graph("N")
        func fixed(_ batch: Int) throws -> [String: Tensor] {
            try CompiledModel(graph: try graph(String(batch)), context: ExecutionContext(threads: 1)).run(try image(batch: batch, size: 8, channels: 64))
        }
        let model = try CompiledModel(graph: symbolic, context: ExecutionContext(threads: 1, preparedBatch: 8))
        XCTAssertEqual(model.prepared.filters.map(\.key), ["\(form):body/kernel"])
        XCTAssertNil(model.prepared.original("body/kernel"))
        XCTAssertEqual(try model.run(try image(batch: 8, size: 8, channels: 64)), try fixed(8))
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), [algorithm])
        let actual = try XCTUnwrap(try model.run(try image(batch: 1, size: 8, channels: 64)).values.first)
        let expected = try XCTUnwrap(try fixed(1).values.first)
        let error = zip(actual.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(error, 1e-5 * max(expected.values.map { abs($0) }.max() ?? 1, 1))
        // Prepared for batch 1 instead (packed, the original released), batch 8 derives the Winograd
        // form from the packed filter: the same floats, so the bits of a model compiled for 8.
        let packedFirst = try CompiledModel(graph: symbolic, context: ExecutionContext(threads: 1))
        XCTAssertEqual(try packedFirst.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), ["im2col"])
        XCTAssertEqual(try packedFirst.run(try image(batch: 1, size: 8, channels: 64)), try fixed(1))
        XCTAssertEqual(try packedFirst.run(try image(batch: 8, size: 8, channels: 64)), try fixed(8))
        XCTAssertEqual(packedFirst.prepared.filters.map(\.key), ["conv:body/kernel", "\(form):body/kernel"])
    }
}
