import Foundation
import KeelRuntime
import XCTest

/// The whole pipeline gives the same numbers whichever SIMD level `KEEL_SIMD` leaves the C
/// kernels (the generic level runs the portable Swift and OpenBLAS paths a CPU without AVX2
/// takes): a small VGG-like model with the 3-channel first layer (direct), Winograd layers, a
/// fused pool and a dense head.
final class SIMDLevelTests: XCTestCase {
    func testEveryLevelComputesTheSameOutputs() throws {
        let folder = NSTemporaryDirectory() + "keel-simd-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let graph = """
            model small_vgg
            input image: f32[N, 20, 18, 3]
            conv1 = conv2d(16, 3, padding: same, activation: relu)
            conv2 = conv2d(24, 3, padding: same, activation: relu)
            pool = max_pool2d(2)
            conv3 = conv2d(32, 3, padding: same, activation: relu)
            flatten = flatten()
            logits = dense(10)
            output logits

            """
        try graph.write(toFile: folder + "/small.keel", atomically: true, encoding: .utf8)
        let input: [Float] = (0..<(2 * 20 * 18 * 3)).map { index in
            let step = Float((index * 37) % 101)
            return step / 50 - 1
        }
        try NpyFile.write(try Tensor(shape: [2, 20, 18, 3], values: input), to: folder + "/x.npy")
        var outputs: [String: [Float]] = [:]
        for level in ["avx512", "avx2", "generic"] {
            let path = "\(folder)/\(level).npy"
            let result = try CLITests.keel(["run", folder + "/small.keel", "--seed", "3", "--input", folder + "/x.npy",
                                            "--output", path], environment: ["KEEL_SIMD": level])
            XCTAssertEqual(result.status, 0, result.stderr)
            outputs[level] = try NpyFile.read(path: path).values
            let bench = try CLITests.keel(["bench", folder + "/small.keel", "--seed", "3", "--input", folder + "/x.npy",
                                           "--iterations", "1", "--warmup", "0"], environment: ["KEEL_SIMD": level])
            XCTAssertEqual(bench.status, 0, bench.stderr)
            let named = ["avx512": "AVX-512", "avx2": "AVX2", "generic": "generic"][level] ?? ""
            // The level asked for, or a lower one on a CPU without it.
            XCTAssertTrue(bench.stdout.contains(", \(named))") || level != "generic", bench.stdout)
        }
        let reference = try XCTUnwrap(outputs["generic"])
        let scale = reference.map { abs($0) }.max() ?? 0
        XCTAssertGreaterThan(scale, 0)
        for (level, values) in outputs {
            XCTAssertEqual(values.count, 20)
            let error = zip(values, reference).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(error, 1e-5 * scale, level)
        }
    }
}
