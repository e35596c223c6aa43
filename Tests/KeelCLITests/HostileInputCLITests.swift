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

    /// F2: a 10,000-node ReLU chain (1,000 took 13.6 s to plan; 10,000 never finished) checks
    /// and runs, with the numbers a chain of ReLUs gives: max(x, 0).
    func testF2TenThousandNodeChainChecksAndRuns() throws {
        var text = "model chain\ninput x: f32[N, 64]\n"
        for index in 0..<10_000 { text += "r\(index) = relu()\n" }
        let model = try write(text, "chain.keel")
        let values = (0..<(2 * 64)).map { Float($0) / 16 - 4 }
        let check = try CLITests.keel(["check", model])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stdout.contains("ok (10000 layers)"), check.stdout)
        let run = try CLITests.keel(["run", model, "--input", try input(values, shape: [2, 64]), "--output", path("out.npy")])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try NpyFile.read(path: path("out.npy")).values, values.map { max($0, 0) })
        // Compiled too: a model without weights once made a .keelc that ended before its (empty)
        // weight section, refused as truncated when read back.
        let compile = try CLITests.keel(["compile", model, "-o", path("chain.keelc")])
        XCTAssertEqual(compile.status, 0, compile.stderr)
        let compiled = try CLITests.keel(["run", path("chain.keelc"), "--input", path("in.npy"), "--output", path("compiled.npy")])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertEqual(try NpyFile.read(path: path("compiled.npy")).values, values.map { max($0, 0) })
    }

    /// F4, F6, F8, F9 through the command line: each hostile input is one error line and exit 1,
    /// at once (no trap, no stack overflow, no hang).
    func testF4F6F8F9HostileFilesGetOneLineErrors() throws {
        // F4: a .npy shape whose partial products overflow (zero elements in all).
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904, 0), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        try Data(npy).write(to: URL(fileURLWithPath: path("overflow.npy")))
        let relu = try write("model m\ninput x: f32[N, 8]\nr = relu()\n", "m.keel")
        // F4: 1,100 nested includes (10,000 overflowed the stack); a padding of 2^31 - 4 (wrapped into a trap).
        let deep = folder.appendingPathComponent("deep")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        for index in 0..<1_100 {
            try "include \"e\(index + 1).keel\"\n".write(to: deep.appendingPathComponent("e\(index).keel"), atomically: false, encoding: .utf8)
        }
        try "model deep\ninclude \"e0.keel\"\n".write(to: deep.appendingPathComponent("top.keel"), atomically: false, encoding: .utf8)
        // F8: ONNX external data that is a FIFO (open(2) blocked forever).
        try FileManager.default.copyItem(atPath: CLITests.repository.path + "/Tests/KeelONNXTests/Fixtures/external_fifo.onnx", toPath: path("fifo.onnx"))
        XCTAssertEqual(mkfifo(path("fifo.bin"), 0o600), 0)
        let cases: [(arguments: [String], error: String)] = [
            (["run", relu, "--input", path("overflow.npy"), "--output", path("o.npy")],
             "overflow.npy: not a usable .npy file: shape (4611686018427387904, 4611686018427387904, 0) is too large"),
            (["check", deep.appendingPathComponent("top.keel").path], "e998.keel:1:1: error: includes nest more than 1,000 files deep"),
            (["check", try write("model big\ninput x: f32[N, 8, 8, 3]\np = zero_padding2d(2147483644)\n", "pad.keel")],
             "error: pad 'p' has shape [N,4294967296,4294967296,3]: more than 576,460,752,303,423,487 elements per batch"),
            // F6: nested empty loops (a hang), stopped by the expansion budget.
            (["check", try write("model m\ninput x: f32[N,8]\nrepeat a in 1..10000 {\n repeat b in 1..10000 {\n  repeat c in 1..10000 {\n }\n }\n}\n", "loops.keel")],
             "error: the model takes more than 1,000,000 expansion steps (layers, block calls and loop iterations)"),
            (["check", path("fifo.onnx")], "error: external data of tensor 'w': location 'fifo.bin' is not a regular file"),
            // F9: a shape whose element count wraps an Int.
            (["check", try write("model big\ninput x: f32[N, 2147483647, 2147483647, 2147483647]\n", "wrap.keel")],
             "error: input 'x' has shape [N,2147483647,2147483647,2147483647]: more than 576,460,752,303,423,487 elements per batch"),
        ]
        for (arguments, error) in cases {
            let result = try CLITests.keel(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(error), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").filter { $0.contains("error:") }.count, 1, result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("o.npy")))
        }
        // F9: MACs that do not fit an Int saturate and say so.
        let macs = try CLITests.keel(["summary", try write("model m\ninput x: f32[N, 16777216, 16777216, 512]\nc = conv2d(512, 3, padding: same)\n", "macs.keel")])
        XCTAssertEqual(macs.status, 0, macs.stderr)
        XCTAssertTrue(macs.stdout.contains("MACs per image: over 9,223,372,036,854,775,806"), macs.stdout)
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
