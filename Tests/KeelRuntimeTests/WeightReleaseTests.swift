import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// Filters and dense kernels are kept once: after the first plan their originals go, and later
/// batch sizes still run from the prepared (packed, Winograd-transformed or dense panel) forms with
/// the same results.
final class WeightReleaseTests: XCTestCase {
    func testFiltersAreReleasedAndOtherBatchSizesStillMatch() throws {
        let source = """
        model small
        input image: f32[N, 16, 16, 3]
        stem = conv2d(16, 3, padding: same, activation: relu)
        body = conv2d(16, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        flat = flatten()
        logits = dense(4)
        output logits
        """
        let graph = try seededGraph(source, path: "small.keel", seed: 5)
        var generator = SplitMix64(seed: 3)
        func input(_ batch: Int) throws -> Tensor {
            try Tensor(shape: [batch, 16, 16, 3], values: (0..<(batch * 768)).map { _ in Float(generator.nextUnit() * 2 - 1) })
        }
        let one = try input(1), three = try input(3)

        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        _ = try model.run(["image": one])
        XCTAssertNil(model.graph.constants["body/kernel"]?.data, "the filter should be released once prepared")
        XCTAssertNil(model.graph.constants["stem/kernel"]?.data)
        XCTAssertNil(model.graph.constants["logits/kernel"]?.data, "dense kernels go too, once packed into panels")
        let afterRelease = try model.run(["image": three])

        let fresh = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1)).run(["image": three])
        XCTAssertEqual(afterRelease, fresh)
    }
}
