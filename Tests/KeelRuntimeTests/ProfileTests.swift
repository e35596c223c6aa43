import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// `keel bench --profile`'s numbers: one entry per step of the plan, in execution order, each the
/// median of its times over the runs asked for, and the profiled runs leave the results a plain run gives.
final class ProfileTests: XCTestCase {
    private func model() throws -> CompiledModel {
        let source = """
        model profiled
        input image: f32[N, 10, 10, 4]
        conv = conv2d(8, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        flat = flatten()
        logits = dense(5)
        output logits
        """
        return try CompiledModel(graph: try seededGraph(source, path: "profiled.keel", seed: 5), context: ExecutionContext(threads: 1))
    }

    func testEveryStepIsProfiledOnceWhateverTheRunCount() throws {
        let model = try model()
        let inputs = ["image": try Tensor(shape: [2, 10, 10, 4], values: (0..<800).map { Float($0 % 17) / 17 - 0.5 })]
        let before = try model.run(inputs)
        let steps = try model.kernelChoices(bindings: ["N": 2]).map(\.node)
        for runs in [1, 4] {
            let profiles = try model.profile(inputs, runs: runs)
            XCTAssertEqual(profiles.map(\.node), steps, "runs \(runs)")
            XCTAssertTrue(profiles.allSatisfy { $0.seconds >= 0 && $0.seconds.isFinite }, "runs \(runs)")
            // The convolution and the dense layer do work the profile counts: 2·N·H·W·C_out·(9·C_in)
            // multiply-adds for the convolution.
            let convolutionFlops: Double = 2 * 2 * 10 * 10 * 8 * (9 * 4)
            XCTAssertEqual(profiles.map(\.flops).max(), convolutionFlops, "runs \(runs)")
        }
        XCTAssertEqual(try model.run(inputs), before)
    }
}
