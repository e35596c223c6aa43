import Foundation
import Keel
import KeelRuntime
import XCTest

/// Issue 16 through the command line: damaged .keelc weights, NaN reporting, hostile names and
/// paths, memory limits. Everything is written in a temporary folder.
final class HostileInputCLITests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("keel-cli-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    private func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    private func write(_ text: String, _ name: String) throws -> String {
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }

    private func input(_ values: [Float], shape: [Int]) throws -> String {
        try NpyFile.write(try Tensor(shape: shape, values: values), to: path("in.npy"))
        return path("in.npy")
    }

    /// F10: weights overwritten with NaN in a .keelc ran silently; `--verify` now refuses the
    /// file, and without it the NaN outputs are reported.
    func testF10DamagedCompiledWeightsAreCaughtByVerify() throws {
        let model = try write("model m\ninput x: f32[N, 8]\nd = dense(4)\n", "m.keel")
        let compiled = path("m.keelc")
        var result = try CLITests.keel(["compile", model, "-o", compiled])
        XCTAssertEqual(result.status, 0, result.stderr)
        let npy = try input((0..<8).map(Float.init), shape: [1, 8])
        result = try CLITests.keel(["run", compiled, "--input", npy, "--output", path("ok.npy"), "--verify"])
        XCTAssertEqual(result.status, 0, result.stderr)
        // Overwrite the first weight values with NaN, as the adversarial trial did.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: compiled))
        let weightsOffset = Int(bytes[32..<40].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        for index in 0..<8 { bytes.replaceSubrange((weightsOffset + 4 * index)..<(weightsOffset + 4 * index + 4), with: [0x00, 0x00, 0xC0, 0x7F]) }
        try bytes.write(to: URL(fileURLWithPath: compiled))
        result = try CLITests.keel(["run", compiled, "--input", npy, "--output", path("bad.npy"), "--verify"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("its weights fail their checksum"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad.npy")))
        result = try CLITests.keel(["run", compiled, "--input", npy, "--output", path("noted.npy")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("note: output 'd' holds 4 NaN; first produced by dense 'd'"), result.stderr)
    }

    /// F3: a NaN pixel gave a clean answer; now the NaN reaches the output, a note names the
    /// node that produced it, and `--check-finite` fails without writing anything.
    func testF3NaNInAnOutputIsReportedWithItsFirstNode() throws {
        // 1e30² overflows to inf in 'm'; inf - inf is NaN in 'd'; ReLU must pass it on.
        let model = try write("model m\ninput x: f32[N, 4]\nm = multiply(x, x)\nd = subtract(m, m)\nr = relu(d)\n", "nan.keel")
        let npy = try input([1e30, -1, 2, 3], shape: [1, 4])
        var result = try CLITests.keel(["run", model, "--input", npy, "--output", path("out.npy")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("note: output 'r' holds 1 NaN; first produced by mul 'm'"), result.stderr)
        let output = try NpyFile.read(path: path("out.npy"))
        XCTAssertTrue(output.values[0].isNaN, "relu must pass NaN through: \(output.values)")
        XCTAssertEqual(Array(output.values.dropFirst()), [0, 0, 0])
        result = try CLITests.keel(["run", model, "--input", npy, "--output", path("checked.npy"), "--check-finite"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("error: output 'r' holds 1 NaN"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("checked.npy")))
    }

    /// Names taken from files reach errors escaped: one line, no terminal escapes.
    func testNamesFromFilesAreEscapedInErrors() throws {
        // The node 'mystery' of an ONNX fixture renamed to seven bytes with a newline and an ESC sequence.
        var bytes = [UInt8](try Data(contentsOf: CLITests.repository.appendingPathComponent("Tests/KeelONNXTests/Fixtures/unknown_op.onnx")))
        let name = Array("mystery".utf8)
        let start = try XCTUnwrap((0...(bytes.count - name.count)).first { Array(bytes[$0..<($0 + name.count)]) == name })
        bytes.replaceSubrange(start..<(start + name.count), with: Array("my\n\u{1B}[2J".utf8))
        let model = path("evil.onnx")
        try Data(bytes).write(to: URL(fileURLWithPath: model))
        let result = try CLITests.keel(["check", model])
        XCTAssertEqual(result.status, 1)
        XCTAssertFalse(result.stderr.contains("\u{1B}"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("'my\\n\\u{1B}[2J'"), result.stderr)
    }

    /// `--allow-path` lets a model include files from one more folder; without it they are refused.
    func testAllowPathOpensOneMoreFolder() throws {
        let library = folder.appendingPathComponent("lib")
        try FileManager.default.createDirectory(at: library, withIntermediateDirectories: true)
        try "block twice() {\n  a = relu()\n  b = relu()\n}\n".write(to: library.appendingPathComponent("blocks.keel"), atomically: true, encoding: .utf8)
        let models = folder.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        let model = models.appendingPathComponent("m.keel").path
        try "model m\ninput x: f32[N, 4]\ninclude \"../lib/blocks.keel\"\ntwice()\n".write(toFile: model, atomically: true, encoding: .utf8)
        var result = try CLITests.keel(["check", model])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("included file '../lib/blocks.keel' lies outside the model's folder"), result.stderr)
        result = try CLITests.keel(["check", model, "--allow-path", library.path])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// F4: a 120 GB input image aborted in the allocator; `--max-memory` caps what a run may take.
    func testF4MaxMemoryRefusesBeforeAllocating() throws {
        let model = try write("model big\ninput x: f32[N, 100000, 100000, 3]\nc = conv2d(64, 3, padding: same)\n", "big.keel")
        var result = try CLITests.keel(["run", model, "--image", "samples/chelsea.jpg", "--preprocess", "none", "--output", path("o.npy")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("input 'x' (output [1,100000,100000,3]) needs 120.0 GB, more than the"), result.stderr)
        let small = try write("model m\ninput x: f32[N, 64, 64, 3]\nc = conv2d(8, 3)\n", "small.keel")
        let npy = try input([Float](repeating: 0.5, count: 64 * 64 * 3), shape: [1, 64, 64, 3])
        result = try CLITests.keel(["run", small, "--input", npy, "--output", path("s.npy"), "--max-memory", "100k"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("more than the 100.0 kB --max-memory allows"), result.stderr)
    }
}
