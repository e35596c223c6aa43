import Foundation
import Keel
import XCTest

/// The command-line conventions of issue 15: every flag honoured or refused, a result for every
/// command that succeeds, pure JSON on stdout, sysexits-style exit statuses, did-you-mean.
final class CLIConventionTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-conventions-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // Features, not classes: the output is [N,16,16,4].
        try """
        model features
        input image: f32[N, 32, 32, 3] preprocess: keras_vgg16
        conv = conv2d(4, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        output pool
        """.write(toFile: folder + "/features.keel", atomically: true, encoding: .utf8)
        // A dense layer straight after a pool, as a Keras head without Flatten.
        try """
        model head
        input features: f32[N, 7, 7, 512]
        fc = dense(5)
        output fc
        """.write(toFile: folder + "/no_flatten.keel", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func keel(_ arguments: [String]) throws -> CLITests.Result { try CLITests.keel(arguments) }

    private func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(object as? [String: Any], file: file, line: line)
    }

    // MARK: item 2: no silent raw pixels

    func testImagesForAModelWithoutPreprocessingNeedAPreset() throws {
        let onnx = "Tests/KeelONNXTests/Fixtures/tf2onnx_style.onnx"
        let refused = try keel(["run", onnx, "--image", "samples/coffee.jpg"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stdout.isEmpty, refused.stdout)
        XCTAssertEqual(refused.stderr.split(separator: "\n").filter { $0.contains("error:") }.count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("input 'input_1' declares no image preprocessing; choose one with --preprocess (keras_vgg16, torch, or none"), refused.stderr)
        let extract = try keel(["extract", onnx, "--at", "probs", "samples/coffee.jpg", "--output", folder + "/f.npy"])
        XCTAssertEqual(extract.status, 1, extract.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/f.npy"))

        // Asked for explicitly, raw pixels are fine; the softmax output's five scores sum to 1.
        let raw = try keel(["run", onnx, "--image", "samples/coffee.jpg", "--preprocess", "none", "--json"])
        XCTAssertEqual(raw.status, 0, raw.stderr)
        let outputs = try XCTUnwrap(try json(raw.stdout)["outputs"] as? [[String: Any]])
        let top = try XCTUnwrap((outputs.first?["top"] as? [[[String: Any]]])?.first)
        XCTAssertEqual(top.count, 5)
        XCTAssertEqual(top.compactMap { $0["score"] as? Double }.reduce(0, +), 1, accuracy: 1e-4)
    }

    // MARK: item 5: a result for every command that succeeds

    func testRunWithoutOutputPrintsEveryOutput() throws {
        let result = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let line = try XCTUnwrap(result.stdout.split(separator: "\n").first.map(String.init))
        XCTAssertTrue(line.hasPrefix("pool: [1,16,16,4] min "), result.stdout)
        XCTAssertTrue(line.hasSuffix("(write it with --output)"), result.stdout)
        // ReLU then max pool: never negative.
        let minimum = try XCTUnwrap(Double(line.split(separator: " ")[3]))
        XCTAssertGreaterThanOrEqual(minimum, 0)
    }

    func testTopOnAnOutputThatIsNotClassesIsRefused() throws {
        let result = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg", "--top", "3"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.isEmpty, result.stdout)
        XCTAssertTrue(result.stderr.contains("error: --top needs an output of shape [N,classes], but 'pool' is f32[N,16,16,4]"), result.stderr)
    }

    func testCheckNotesADenseLayerAppliedPerPosition() throws {
        let result = try keel(["check", folder + "/no_flatten.keel"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("fc: f32[N,7,7,5]"), result.stdout)
        XCTAssertTrue(result.stderr.contains("no_flatten.keel:3:1: note: dense 'fc' is applied to 'features' [N,7,7,512], a rank-4 tensor: it acts on the last axis at each of the 7×7 positions"), result.stderr)
        XCTAssertTrue(result.stderr.contains("add 'flatten()' before it"), result.stderr)
        let flattened = try keel(["check", "graphs/vgg16_resnet_head.keel"])
        XCTAssertFalse(flattened.stderr.contains("note:"), flattened.stderr)
    }

    // MARK: item 9: pure JSON on stdout, notes on stderr, --quiet

    func testCompileJSONStaysJSONWithEveryExtra() throws {
        let result = try keel(["compile", folder + "/features.keel", "--json", "--explain", "--show-frozen", "--print-ir-after-all"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try json(result.stdout)
        XCTAssertNotNil(object["nodes"] as? [[String: Any]])
        XCTAssertNotNil(object["frozen_boundary"] as? [String])
        XCTAssertNotNil(object["rejected_rewrites"] as? [String])
        let passes = try XCTUnwrap(object["ir_after_pass"] as? [[String: Any]])
        XCTAssertTrue(passes.contains { $0["pass"] as? String == "epilogue-fusion" }, "\(passes.map { $0["pass"] ?? "" })")
        let written = try keel(["compile", folder + "/features.keel", "--json", "-o", folder + "/f.keelc"])
        XCTAssertEqual(written.status, 0, written.stderr)
        XCTAssertEqual((try json(written.stdout)["written"] as? [String: Any])?["file"] as? String, folder + "/f.keelc")
    }

    func testCheckAndRunOfferJSON() throws {
        let check = try keel(["check", "--json", "graphs/vgg16_two_heads.keel"])
        XCTAssertEqual(check.status, 0, check.stderr)
        let outputs = try XCTUnwrap(try json(check.stdout)["outputs"] as? [[String: Any]])
        XCTAssertEqual(outputs.map { $0["name"] as? String }, ["logits", "tokens"])
        XCTAssertEqual((outputs[0]["shape"] as? [Any])?.count, 2)
        XCTAssertTrue((outputs[0]["shape"] as? [Any])?.first is NSNull)

        let run = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg", "--image", "samples/rocket.jpg",
                            "--json", "--output", folder + "/y.npy"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let written = try XCTUnwrap((try json(run.stdout)["outputs"] as? [[String: Any]])?.first)
        XCTAssertEqual(written["shape"] as? [Int], [2, 16, 16, 4])
        XCTAssertEqual(written["file"] as? String, folder + "/y.npy")
        let saved = try NpyFile.read(path: folder + "/y.npy")
        XCTAssertEqual(written["max"] as? Double ?? -1, Double(saved.values.max() ?? 0), accuracy: 1e-3)
        XCTAssertTrue(run.stderr.contains("note:"), "notes stay on stderr")
    }

    func testSummaryJSONHasTheInputRowOfTheTable() throws {
        let result = try keel(["summary", "--json", "graphs/vgg16.keel"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let first = try XCTUnwrap((try json(result.stdout)["layers"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["name"] as? String, "input_1")
        XCTAssertEqual(first["op"] as? String, "input")
        XCTAssertEqual(first["params"] as? Int, 0)
        let shape = try XCTUnwrap(first["output_shape"] as? [Any])
        XCTAssertTrue(shape.first is NSNull)
        XCTAssertEqual(shape.dropFirst().compactMap { $0 as? Int }, [224, 224, 3])
        let table = try keel(["summary", "graphs/vgg16.keel"])
        XCTAssertTrue(table.stdout.contains("input_1"), table.stdout)
    }

    func testQuietLeavesOnlyResults() throws {
        let loud = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg"])
        XCTAssertTrue(loud.stderr.contains("note: "), loud.stderr)
        let quiet = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg", "--quiet"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(quiet.stdout, loud.stdout)
        let extract = try keel(["extract", folder + "/features.keel", "--at", "pool", "samples", "--output", folder + "/q.npy", "-q"])
        XCTAssertEqual(extract.status, 0, extract.stderr)
        XCTAssertEqual(extract.stderr, "")
    }

    // MARK: item 10: conventions

    func testVersionHelpAndExitStatuses() throws {
        let version = try keel(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.stdout, "keel \(KeelVersion.current)\n")
        let help = try keel(["run", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("A .keel graph, an .onnx model or a compiled .keelc."), help.stdout)

        // Usage errors: 64 (EX_USAGE), "error:" in lower case like every other error.
        let usage: [([String], String)] = [
            (["chek", "graphs/vgg16.keel"], "error: unknown command 'chek'; did you mean 'check'?"),
            (["run", "graphs/vgg16.keel", "--outptu", "y.npy", "--input", "x.npy"], "error: unknown option '--outptu'; did you mean '--output'?"),
            (["check", "--jsn", "graphs/vgg16.keel"], "error: unknown option '--jsn'; did you mean '--json'?"),
            (["run", "graphs/vgg16.keel"], "error: give --input .npy files or --image files (not both)"),
            (["check"], "error: missing expected argument '<file>'"),
        ]
        for (arguments, message) in usage {
            let result = try keel(arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix(message), "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Error:"), result.stderr)
        }
        // Bad input: 1.
        let bad = try keel(["check", "graphs/missing.keel"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("error: graphs/missing.keel: no such file"), bad.stderr)
    }

    /// `make install` honours PREFIX and DESTDIR for the binary, the man page and the completion
    /// scripts (checked with `make -n`: the real install needs a release build).
    func testInstallHonoursPrefixAndDestdir() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["make", "-n", "install", "PREFIX=/opt/keel", "DESTDIR=/tmp/stage"]
        process.currentDirectoryURL = CLITests.repository
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let plan = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, plan)
        for line in ["install -m 755 .build/release/keel /tmp/stage/opt/keel/bin/keel",
                     "install -m 644 .build/share/man/man1/keel.1 /tmp/stage/opt/keel/share/man/man1/keel.1",
                     "/tmp/stage/opt/keel/share/bash-completion/completions/keel",
                     "/tmp/stage/opt/keel/share/zsh/site-functions/_keel",
                     "/tmp/stage/opt/keel/share/fish/vendor_completions.d/keel.fish",
                     "package plugin generate-manual"] {
            XCTAssertTrue(plan.contains(line), "\(line)\n\(plan)")
        }
        for shell in ["bash", "zsh", "fish"] {
            let script = try keel(["--generate-completion-script", shell])
            XCTAssertEqual(script.status, 0, script.stderr)
            XCTAssertTrue(script.stdout.contains("extract") && script.stdout.contains("preprocess"), shell)
        }
    }

    func testTooManyThreadsWarnsOnce() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let result = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg", "--threads", "\(cores + 1)"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let warnings = result.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: --threads \(cores + 1) is more than the \(cores) cores") }
        XCTAssertEqual(warnings.count, 1, result.stderr)
        let fitting = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg", "--threads", "\(cores)"])
        XCTAssertFalse(fitting.stderr.contains("warning:"), fitting.stderr)
    }

    /// A thread count no run can use is refused up front, never clamped to one that can.
    func testThreadCountsOutOfRangeAreRefused() throws {
        for (threads, message) in [("0", "error: --threads must be at least 1"), ("1025", "error: --threads must be at most 1024")] {
            let result = try keel(["run", folder + "/features.keel", "--image", "samples/coffee.jpg", "--threads", threads])
            XCTAssertEqual(result.status, 64, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix(message), result.stderr)
            XCTAssertEqual(result.stdout, "")
        }
    }

    /// `bench --callers` times callers running one model at once against the same runs in
    /// series; its options are refused where they cannot apply.
    func testBenchCallersMeasuresConcurrentRuns() throws {
        let input = folder + "/x.npy"
        try NpyFile.write(try Tensor(shape: [1, 32, 32, 3], values: [Float](repeating: 0.25, count: 32 * 32 * 3)), to: input)
        let bench = try keel(["bench", folder + "/features.keel", "--input", input, "--iterations", "2", "--warmup", "0",
                              "--threads", "1", "--callers", "3", "--json"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let concurrent = try XCTUnwrap(try json(bench.stdout)["concurrent"] as? [String: Any])
        XCTAssertEqual(concurrent["callers"] as? Int, 3)
        XCTAssertEqual(concurrent["runs_per_caller"] as? Int, 2)
        XCTAssertEqual(concurrent["threads_per_run"] as? Int, 1)
        let serial = try XCTUnwrap(concurrent["serial_ms"] as? Double), together = try XCTUnwrap(concurrent["concurrent_ms"] as? Double)
        XCTAssertGreaterThan(serial, 0)
        XCTAssertEqual(try XCTUnwrap(concurrent["speedup"] as? Double), serial / together, accuracy: 1e-6)
        for (flags, message) in [(["--threads-per-run", "2"], "error: --threads-per-run needs --callers"),
                                 (["--callers", "0"], "error: --callers must be from 1 to 256")] {
            let refused = try keel(["bench", folder + "/features.keel", "--input", input] + flags)
            XCTAssertEqual(refused.status, 64, refused.stderr)
            XCTAssertTrue(refused.stderr.hasPrefix(message), refused.stderr)
        }
    }

    func testPythonSpellingsInAGraphGetTheKeelSpelling() throws {
        try "model m\ninput x: f32[N, 8]\nfc = dense(units=5, activation=\"softmax\")\noutput fc\n"
            .write(toFile: folder + "/keyword.keel", atomically: true, encoding: .utf8)
        let keyword = try keel(["check", folder + "/keyword.keel"])
        XCTAssertEqual(keyword.status, 1)
        XCTAssertTrue(keyword.stderr.contains("keyword.keel:3:12: error: arguments are labelled with ':' in .keel files; did you mean 'units: 5'?"), keyword.stderr)
        try "model m\ninput x: f32[N, 8]\nfc = dense(5, activation: 'softmax')\noutput fc\n"
            .write(toFile: folder + "/quoted.keel", atomically: true, encoding: .utf8)
        let quoted = try keel(["check", folder + "/quoted.keel"])
        XCTAssertEqual(quoted.status, 1)
        XCTAssertTrue(quoted.stderr.contains("did you mean \"softmax\"?"), quoted.stderr)
    }
}
