import Foundation
import KeelRuntime
import XCTest

/// `keel bench --batch-schedule`: honoured (the profile says which layers ran image by image) or
/// refused with the values it takes.
final class BatchScheduleTests: XCTestCase {
    func testBenchHonoursOrRefusesTheSchedule() throws {
        let folder = try CLITests.smallModelFolder("schedule", graph: """
            model small
            input image: f32[N, 12, 10, 3]
            conv1 = conv2d(8, 3, padding: same, activation: relu)
            conv2 = conv2d(8, 3, padding: same, activation: relu)
            pool = global_avg_pool2d()
            logits = dense(4)
            output logits

            """, inputShape: [2, 12, 10, 3])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func bench(_ schedule: String) throws -> (status: Int32, stdout: String, stderr: String) {
            let result = try CLITests.keel(["bench", folder + "/small.keel", "--input", folder + "/x.npy", "--iterations", "1",
                                            "--warmup", "0", "--profile", "--batch-schedule", schedule])
            return (result.status, result.stdout, result.stderr)
        }
        let byImage = try bench("image-by-image")
        XCTAssertEqual(byImage.status, 0, byImage.stderr)
        XCTAssertEqual(byImage.stdout.components(separatedBy: "image by image").count - 1, 4, "both convolutions, the pool and the dense layer: \(byImage.stdout)")
        let whole = try bench("whole-batch")
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertFalse(whole.stdout.contains("image by image"), whole.stdout)
        let refused = try bench("per-image")
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("batch-schedule") && refused.stderr.contains("image-by-image"), refused.stderr)
    }
}
