import Keel
import XCTest

/// The runtime issue's must-show: both heads on one backbone plan their activations into an
/// arena below half of what separate buffers would take, at batch 1 and 8, over the whole batch at
/// once; run image by image where large layers allow (the default), less.
final class MemoryPlanTests: XCTestCase {
    func testTwoHeadsPlanBelowHalfTheNaiveSum() throws {
        let path = repository.appendingPathComponent("graphs/vgg16_two_heads.keel").path
        var pipeline = ModelPipeline(path: path, threads: 1, optimization: .O0)
        pipeline.batchSchedule = .wholeBatch
        let (model, _) = try pipeline.compile()
        pipeline.batchSchedule = .automatic
        let (tiled, _) = try pipeline.compile()
        for batch in [1, 8] {
            let report = try model.memoryReport(bindings: ["N": batch])
            // By hand: the two largest live tensors are block1's 224·224·64 floats, 12,845,056 bytes per image each.
            XCTAssertGreaterThanOrEqual(report.plannedBytes, 2 * 12_845_056 * batch)
            XCTAssertLessThan(Double(report.plannedBytes), 0.5 * Double(report.naiveBytes), "batch \(batch)")
            // Image by image never takes more: the plan keeps the batch where it would.
            XCTAssertLessThanOrEqual(try tiled.memoryReport(bindings: ["N": batch]).plannedBytes, report.plannedBytes)
        }
    }
}
