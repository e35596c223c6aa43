import Foundation
import KeelRuntime
import XCTest

/// The whole pipeline gives the same numbers whichever capabilities `KEEL_SIMD` leaves the C
/// kernels (generic runs the portable Swift and OpenBLAS paths a CPU without AVX2 takes): a small VGG-like model with the 3-channel first layer (direct), Winograd layers, a
/// fused pool and a dense head.
final class SIMDLevelTests: XCTestCase {
    func testEveryLevelComputesTheSameOutputs() throws {
        let folder = try CLITests.smallModelFolder("simd", graph: """
            model small_vgg
            input image: f32[N, 20, 18, 3]
            conv1 = conv2d(16, 3, padding: same, activation: relu)
            conv2 = conv2d(24, 3, padding: same, activation: relu)
            pool = max_pool2d(2)
            conv3 = conv2d(32, 3, padding: same, activation: relu)
            flatten = flatten()
            logits = dense(10)
            output logits

            """, inputShape: [2, 20, 18, 3])
        defer { try? FileManager.default.removeItem(atPath: folder) }
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
            // generic is available everywhere; the others where the CPU has them.
            XCTAssertTrue(bench.stdout.contains(", generic)") || level != "generic", bench.stdout)
            XCTAssertFalse(bench.stdout.contains("AVX-512") && level == "avx2", bench.stdout)
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

    /// Names are united, `-name` removes, and an unknown name is one warning line, not an error.
    func testCapabilityNamesNarrowTheSetAndUnknownNamesWarn() throws {
        let folder = NSTemporaryDirectory() + "keel-simd-names-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "model tiny\ninput x: f32[N, 4]\ny = dense(3)\noutput y\n".write(toFile: folder + "/tiny.keel", atomically: true,
                                                                            encoding: .utf8)
        try NpyFile.write(try Tensor(shape: [1, 4], values: [1, 2, 3, 4]), to: folder + "/x.npy")
        func capabilities(_ request: String) throws -> (used: String, stderr: String) {
            let bench = try CLITests.keel(["bench", folder + "/tiny.keel", "--seed", "1", "--input", folder + "/x.npy",
                                           "--iterations", "1", "--warmup", "0", "--json"],
                                          environment: ["KEEL_SIMD": request])
            XCTAssertEqual(bench.status, 0, bench.stderr)
            let object = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any]
            let warnings = bench.stderr.split(separator: "\n").filter { $0.contains("KEEL_SIMD") }
            return (object?["simd"] as? String ?? "", warnings.joined(separator: "\n"))
        }
        let everything = try capabilities("")
        XCTAssertEqual(everything.stderr, "")
        let withoutAMX = try capabilities("avx512,-amx")
        XCTAssertFalse(withoutAMX.used.contains("AMX"), withoutAMX.used)
        if everything.used.contains("AVX512_BF16") { XCTAssertTrue(withoutAMX.used.contains("AVX512_BF16"), withoutAMX.used) }
        XCTAssertEqual(try capabilities("avx512,-avx512").used, everything.used.contains("AVX2") ? "AVX2" : "generic")
        XCTAssertEqual(try capabilities("generic").used, "generic")
        let typo = try capabilities("avx2,avx5l2")
        XCTAssertEqual(typo.used, everything.used.contains("AVX2") ? "AVX2" : "generic")
        XCTAssertEqual(typo.stderr.split(separator: "\n").count, 1, typo.stderr)
        XCTAssertTrue(typo.stderr.contains("'avx5l2'"), typo.stderr)
    }
}
