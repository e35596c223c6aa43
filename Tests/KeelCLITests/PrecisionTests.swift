import Foundation
import KeelKernels
import KeelRuntime
import XCTest

/// `--precision bf16` end to end on a small VGG-like model: close to fp32 (bf16 inputs and
/// weights, fp32 sums), the same numbers from a .keelc compiled for bf16, an accuracy report from
/// `bench --compare`, and on a CPU without bf16 kernels one line saying so and fp32 results.
final class PrecisionTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = try CLITests.smallModelFolder("precision", graph: """
            model small_vgg
            input image: f32[N, 20, 18, 3]
            conv1 = conv2d(16, 3, padding: same, activation: relu)
            conv2 = conv2d(40, 3, padding: same, activation: relu)
            pool = max_pool2d(2)
            conv3 = conv2d(33, 3, padding: same, activation: relu)
            flatten = flatten()
            logits = dense(10)
            output logits

            """, inputShape: [2, 20, 18, 3])
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func run(_ arguments: [String], output: String, environment: [String: String] = [:]) throws -> (values: [Float], stderr: String) {
        let result = try CLITests.keel(["run"] + arguments + ["--input", folder + "/x.npy", "--output", output],
                                       environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        return (try NpyFile.read(path: output).values, result.stderr)
    }

    func testBF16IsCloseToFP32AndACompiledFileGivesTheSameNumbers() throws {
        guard Precision.bf16.isAvailable else {
            throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16, so bf16 runs fp32 (see the fallback test)")
        }
        let source = [folder + "/small.keel", "--seed", "3"]
        let fp32 = try run(source, output: folder + "/fp32.npy").values
        let bf16 = try run(source + ["--precision", "bf16"], output: folder + "/bf16.npy").values
        let range = fp32.map { abs($0) }.max() ?? 0
        let largest = zip(fp32, bf16).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertGreaterThan(largest, 0, "bf16 should round something")
        XCTAssertLessThan(largest, 0.02 * range)

        let compiled = try CLITests.keel(["compile"] + source + ["--precision", "bf16", "-o", folder + "/m.keelc"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertEqual(try run([folder + "/m.keelc"], output: folder + "/compiled.npy").values, bf16)
        // The file was made for bf16: asking it for fp32 is refused, not silently ignored.
        let refused = try CLITests.keel(["run", folder + "/m.keelc", "--precision", "fp32", "--input", folder + "/x.npy",
                                         "--output", folder + "/refused.npy"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--precision"), refused.stderr)

        let bench = try CLITests.keel(["bench"] + source + ["--precision", "bf16", "--compare", "fp32", "--input",
                                                            folder + "/x.npy", "--iterations", "1", "--warmup", "0", "--profile"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("bf16 against fp32"), bench.stdout)
        XCTAssertTrue(bench.stdout.contains("logits: max abs"), bench.stdout)
        XCTAssertTrue(bench.stdout.contains("top-1 2/2"), bench.stdout)
        XCTAssertTrue(bench.stdout.contains("bf16 im2col") || bench.stdout.contains("bf16 direct"), bench.stdout)
        // Every layer runs bf16 on AMX, the RGB first one included (its input split in two bf16
        // terms); on AVX512_BF16 alone that split layer keeps fp32, the faster there.
        XCTAssertEqual(bench.stdout.contains("fp32 direct"), !CPUCapabilities.inUse.contains(.amxBF16), bench.stdout)
    }

    func testWithoutBF16KernelsOneLineSaysSoAndTheRunIsFP32() throws {
        let source = [folder + "/small.keel", "--seed", "3"]
        let noBF16 = ["KEEL_SIMD": "avx512,-avx512bf16"]
        let fp32 = try run(source, output: folder + "/fp32.npy", environment: noBF16).values
        let fallback = try run(source + ["--precision", "bf16"], output: folder + "/fallback.npy", environment: noBF16)
        XCTAssertEqual(fallback.values, fp32)
        let lines = fallback.stderr.split(separator: "\n").filter { $0.contains("bf16") }
        XCTAssertEqual(lines.count, 1, fallback.stderr)
        XCTAssertTrue(lines.first?.contains("running fp32") ?? false, fallback.stderr)
    }
}
