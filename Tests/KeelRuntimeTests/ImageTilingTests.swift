import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// Which layers of a batched plan run image by image under the automatic schedule, and that the
/// arena follows (the values are checked against ONNX Runtime in BackboneBlockTests and against a
/// reference in ConcatPlacementTests): a stem whose activations outgrow L2 per image, a head whose weights
/// outweigh its activations.
final class ImageTilingTests: XCTestCase {
    /// Each stem map is just over the threshold per image, so a layer's input and output take twice it.
    private static let side = Int((Double(ImageTiling.activationBytesThreshold) / (4.0 * 8)).squareRoot()) + 1

    private func model(_ schedule: BatchSchedule, threads: Int = 1) throws -> CompiledModel {
        let source = """
        model tiled
        input image: f32[N, \(Self.side), \(Self.side), 8]
        expand = conv2d(8, 1, activation: relu)
        project = conv2d(8, 1, activation: relu)
        pool = global_avg_pool2d()
        logits = dense(512)
        output logits
        """
        return try CompiledModel(graph: try seededGraph(source, path: "tiled.keel", seed: 3),
                                 context: ExecutionContext(threads: threads, batchSchedule: schedule))
    }

    private func input(batch: Int) throws -> [String: Tensor] {
        let shape = [batch, Self.side, Self.side, 8]
        return ["image": try Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { Float(($0 * 37) % 101) / 50 - 1 })]
    }

    private func layersByImage(_ model: CompiledModel, batch: Int) throws -> [String] {
        try model.profile(input(batch: batch)).filter { $0.images > 1 }.map(\.node)
    }

    func testTheStemRunsImageByImageAndTheHeadOnTheWholeBatch() throws {
        let model = try model(.automatic)
        XCTAssertEqual(try layersByImage(model, batch: 3), ["expand", "project", "pool"])
        XCTAssertEqual(try layersByImage(model, batch: 1), [])
        XCTAssertEqual(try layersByImage(self.model(.wholeBatch), batch: 3), [])
        // Every layer that can: the dense layer's rows are images too, though its weights (8·512
        // floats) outweigh its 8 + 512 activations per image.
        XCTAssertEqual(try layersByImage(self.model(.imageByImage), batch: 3), ["expand", "project", "pool", "logits"])
    }

    /// A squeeze-excitation gate between the expanded map and its projection: its two 1×1
    /// convolutions on pooled vectors (dense layers here) are small enough to join the run instead
    /// of splitting it, so each image's gate multiplies the map its expansion has just written; every
    /// image gets the values it gets over the whole batch.
    func testSmallLayersBetweenImageByImageOnesJoinTheirRun() throws {
        let source = """
        model gated
        input image: f32[N, \(Self.side), \(Self.side), 8]
        expand = conv2d(8, 1, activation: relu)
        pool = global_avg_pool2d(keepdims: true)
        squeeze = conv2d(2, 1, activation: relu)
        excite = conv2d(8, 1, activation: sigmoid)
        gated = multiply(expand, excite)
        project = conv2d(8, 1)
        features = global_avg_pool2d()
        output features
        """
        func model(_ schedule: BatchSchedule) throws -> CompiledModel {
            try CompiledModel(graph: try seededGraph(source, path: "gated.keel", seed: 5),
                              context: ExecutionContext(threads: 2, batchSchedule: schedule))
        }
        let automatic = try model(.automatic)
        let byImage = try automatic.profile(input(batch: 3)).filter { $0.images > 1 }.map(\.node)
        XCTAssertEqual(byImage.first, "expand")
        XCTAssertEqual(byImage.last, "features")
        XCTAssertTrue(Set(byImage).isSuperset(of: ["pool", "squeeze", "excite", "project"]), "\(byImage)")
        let tiled = try XCTUnwrap(try automatic.run(input(batch: 3))["features"])
        let whole = try XCTUnwrap(try model(.wholeBatch).run(input(batch: 3))["features"])
        XCTAssertEqual(tiled.values, whole.values)
    }

    /// The values a run passes between its layers take one image's buffer. Over the whole batch the
    /// peak is the input and the expanded maps of all three images; image by image, the input (which
    /// lives until the run ends) and one image's expanded and projected maps.
    func testValuesInsideARunHoldOneImage() throws {
        let map = 4 * Self.side * Self.side * 8
        let whole = try model(.wholeBatch).memoryReport(bindings: ["N": 3]).plannedBytes
        let tiled = try model(.automatic).memoryReport(bindings: ["N": 3]).plannedBytes
        XCTAssertGreaterThanOrEqual(whole, 6 * map, "input and the expand output of all three images")
        XCTAssertLessThan(tiled, whole - map / 2, "one map fewer, give or take alignment and the pooled vectors")
    }

    /// Buffers inside one run hold one image; buffers a run reads from before it or leaves for after
    /// it live across the whole run; pinned ones (graph inputs and outputs) always keep the batch.
    func testBufferLifetimesAndSizesUnderRuns() {
        let tiling = ImageTiling(batch: 4, runs: [2...4, 7...9])
        var requests = [
            BufferRequest(size: 40, firstStep: 3, lastStep: 4),   // inside the first run
            BufferRequest(size: 40, firstStep: 1, lastStep: 3),   // enters the first run
            BufferRequest(size: 40, firstStep: 3, lastStep: 8),   // leaves one run for the next
            BufferRequest(size: 40, firstStep: 5, lastStep: 6),   // between the runs
            BufferRequest(size: 40, firstStep: 7, lastStep: 9),   // inside the second run, but an output
        ]
        let perImage = tiling.place(&requests, roots: ["a", "b", "c", "d", "y"], pinned: ["y"])
        XCTAssertEqual(perImage, ["a"])
        XCTAssertEqual(requests.map(\.size), [10, 40, 40, 40, 40])
        XCTAssertEqual(requests.map(\.firstStep), [3, 1, 2, 5, 7])
        XCTAssertEqual(requests.map(\.lastStep), [4, 4, 9, 6, 9])
        XCTAssertEqual([0, 2, 4, 5, 7, 10].map { tiling.run(containing: $0) }, [nil, 2...4, 2...4, nil, 7...9, nil])
        XCTAssertEqual(tiling.run(startingAt: 7), 7...9)
        XCTAssertNil(tiling.run(startingAt: 3))
    }
}

/// A bf16 plan runs image by image too: a bf16 buffer holds two values per float slot, so an
/// image's slice starts half as many slots in, and a value with an odd count per image (which
/// would start mid-slot) keeps the whole batch. Each image of a batch of 3 gets exactly the bits
/// it gets alone, and the plan stays within bf16's rounding of the fp32 plan.
final class BF16ImageTilingTests: XCTestCase {
    private let source = """
        model tiled_bf16
        input image: f32[N, 9, 11, 32]
        stem = conv2d(32, 1, activation: relu)
        first = conv2d(32, 3, padding: same, activation: relu)
        second = conv2d(32, 3, padding: same, activation: relu)
        odd = conv2d(33, 3, padding: same, activation: relu)
        back = conv2d(32, 3, padding: same)
        sum = add(back, stem)
        block = relu()
        third = conv2d(block, 32, 3, padding: same, activation: relu)
        head = conv2d(16, 1)
        output head
        """

    private func model(_ precision: Precision) throws -> CompiledModel {
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: "tiled_bf16.keel")).graph
        graph = try PassPipeline.standard(level: .O2).run(graph).graph
        for (name, constant) in graph.constants { graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 6) }
        return try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: precision,
                                                                         batchSchedule: .imageByImage))
    }

    private func images(_ count: Int, first: Int = 0) throws -> Tensor {
        let size = 9 * 11 * 32
        let values = (first * size..<(first + count) * size).map { Float(($0 * 29) % 97) / 48 - 1 }
        return try Tensor(shape: [count, 9, 11, 32], values: values)
    }

    func testBF16LayersRunImageByImageWithTheBitsOfSingleImages() throws {
        guard Precision.bf16.isAvailable else {
            throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16: bf16 plans run fp32")
        }
        let bf16 = try model(.bf16), fp32 = try model(.fp32)
        let batch = ["image": try images(3)]
        let profile = try bf16.profile(batch)
        let byImage = Set(profile.filter { $0.images > 1 }.map(\.node))
        let bf16Stored = Set(try bf16.kernelChoices(bindings: ["N": 1]).filter { $0.choice.output == .bf16 }.map(\.node))
        XCTAssertTrue(bf16Stored.isSuperset(of: ["stem", "first", "second", "odd"]), "\(bf16Stored)")
        // first and second read and write bf16 values of an even count per image; odd writes 33
        // channels over 9×11 pixels per image, so it and back, which reads it, keep the batch.
        XCTAssertTrue(byImage.isSuperset(of: ["first", "second"]), "\(byImage)")
        XCTAssertFalse(byImage.contains("odd") || byImage.contains("back"), "\(byImage)")
        let together = try XCTUnwrap(try bf16.run(batch)["head"])
        let perImage = 16 * 9 * 11
        for image in 0..<3 {
            let alone = try XCTUnwrap(try bf16.run(["image": try images(1, first: image)])["head"])
            XCTAssertEqual(Array(together.values[image * perImage..<(image + 1) * perImage]), alone.values, "image \(image)")
        }
        let exact = try XCTUnwrap(try fp32.run(batch)["head"])
        let largest = exact.values.map(abs).max() ?? 0
        let worst = zip(together.values, exact.values).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertGreaterThan(largest, 0)
        XCTAssertLessThanOrEqual(worst, 0.05 * largest, "bf16 against fp32")
    }
}
