import Foundation
import Keel
import XCTest

/// A .keelc says how it was made and is cut where its source would be: the notes and the cut
/// points of `keel run/extract` are those of the source model (#15 items 1 and 3).
final class CompiledModelTests: XCTestCase {
    private var folder = ""
    private let fixtures = WeightBindingCommandTests.relative

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-keelc-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func keel(_ arguments: [String]) throws -> CLITests.Result { try CLITests.keel(arguments) }

    private func maximumDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.values, b.values).map { abs($0 - $1) }.max() ?? .infinity
    }

    func testCompiledFileKeepsTheSeededNoteAndRefusesFlagsThatWouldRemakeIt() throws {
        let compiled = try keel(["compile", fixtures + "mini_vgg.keel", "-o", folder + "/seeded.keelc"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertTrue(compiled.stdout.contains("from \(fixtures)mini_vgg.keel, -O2, fp32, 14 parameter tensors seeded-random (--seed 0)"), compiled.stdout)
        let run = try keel(["run", folder + "/seeded.keelc", "--input", fixtures + "input_b2.npy", "--output", folder + "/y.npy"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("14 parameter tensors use seeded-random weights (--seed 0) when \(fixtures)mini_vgg.keel was compiled"), run.stderr)
        for flags in [["--weights", fixtures + "tf2onnx.onnx"], ["--weights", fixtures + "pytorch.onnx", "--match", "order"],
                      ["--seed", "1"], ["-O0"], ["--passes", "epilogue-fusion"]] {
            let refused = try keel(["run", folder + "/seeded.keelc", "--input", fixtures + "input_b2.npy", "--output", folder + "/z.npy"] + flags)
            XCTAssertEqual(refused.status, 1, "\(flags)")
            XCTAssertTrue(refused.stderr.contains("seeded.keelc is compiled from \(fixtures)mini_vgg.keel: \(flags[0].hasPrefix("-O") ? "-O" : flags[0])"), refused.stderr)
            XCTAssertTrue(refused.stderr.contains("would change how it is made; compile \(fixtures)mini_vgg.keel again"), refused.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/z.npy"))
        }
        let extract = try keel(["extract", folder + "/seeded.keelc", "--at", "block2_pool", "samples/coffee.jpg", "--preprocess", "keras_vgg16",
                                "--output", folder + "/f.npy", "--seed", "3"])
        XCTAssertEqual(extract.status, 1)
    }

    func testCompiledWithWeightsRunsTheBoundModelWithoutTheSeededNote() throws {
        let compiled = try keel(["compile", fixtures + "mini_vgg.keel", "--weights", fixtures + "tf2onnx.onnx", "-o", folder + "/bound.keelc"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertTrue(compiled.stdout.contains("weights \(fixtures)tf2onnx.onnx (by name)"), compiled.stdout)
        let run = try keel(["run", folder + "/bound.keelc", "--input", fixtures + "input_b2.npy", "--output", folder + "/y.npy"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertFalse(run.stderr.contains("seeded-random"), run.stderr)
        // ONNX Runtime's logits for the same file and input.
        let expected = try NpyFile.read(path: CLITests.repository.path + "/" + fixtures + "tf2onnx_b2_logits.npy")
        XCTAssertLessThan(maximumDifference(try NpyFile.read(path: folder + "/y.npy"), expected), 1e-4)
    }

    /// `keel summary` of a .keelc lists the names `--at` accepts on it, and those it refuses;
    /// every listed name really cuts, every refused one really is refused.
    func testSummaryOfACompiledFileListsItsCutPoints() throws {
        XCTAssertEqual(try keel(["compile", fixtures + "mini_vgg.keel", "-o", folder + "/m.keelc"]).status, 0)
        let summary = try keel(["summary", folder + "/m.keelc"])
        XCTAssertEqual(summary.status, 0, summary.stderr)
        let lines = summary.stdout.split(separator: "\n").map(String.init)
        let accepted = try XCTUnwrap(lines.first { $0.hasPrefix("Cut points (--at on this file): ") })
        let refused = try XCTUnwrap(lines.first { $0.hasPrefix("Not cuttable here (") })
        // block1_conv1 runs in one step with block1_pool and block2_conv2 with block2_pool (max-pool
        // fusion); batch_normalization is folded into dense, whose output is no longer its own.
        XCTAssertEqual(accepted, "Cut points (--at on this file): block1_pool, block2_conv1, block2_pool, flatten, activation, dense_1, logits")
        XCTAssertTrue(refused.hasSuffix(": batch_normalization, block1_conv1, block2_conv2, dense"), refused)
        let json = try keel(["summary", "--json", folder + "/m.keelc"])
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let cutPoints = try XCTUnwrap(document["cut_points"] as? [String])
        let notCuttable = try XCTUnwrap(document["not_cuttable"] as? [String: String])
        XCTAssertEqual(accepted, "Cut points (--at on this file): " + cutPoints.joined(separator: ", "))
        for name in cutPoints {
            let cut = try keel(["extract", folder + "/m.keelc", "--at", name, "samples/coffee.jpg", "--preprocess", "keras_vgg16",
                                "--output", folder + "/\(name).npy"])
            XCTAssertEqual(cut.status, 0, "\(name): \(cut.stderr)")
        }
        for (name, reason) in notCuttable {
            let cut = try keel(["extract", folder + "/m.keelc", "--at", name, "samples/coffee.jpg", "--preprocess", "keras_vgg16",
                                "--output", folder + "/\(name).npy"])
            XCTAssertEqual(cut.status, 1, name)
            XCTAssertTrue(cut.stderr.contains("cannot cut at '\(name)': \(reason)"), cut.stderr)
        }
        // A source model has no such table: its summary rows are its cut points.
        XCTAssertFalse(try keel(["summary", fixtures + "mini_vgg.keel"]).stdout.contains("Cut points"))
    }

    func testEveryLayerOfTheSourceIsACutPointOfTheCompiledFileOrSaysWhyNot() throws {
        let source = fixtures + "mini_vgg.keel"
        XCTAssertEqual(try keel(["compile", source, "-o", folder + "/m.keelc"]).status, 0)
        func extract(_ model: String, _ layer: String, _ output: String, _ extra: [String] = []) throws -> CLITests.Result {
            try keel(["extract", model, "--at", layer, "samples/coffee.jpg", "--preprocess", "keras_vgg16", "--output", folder + "/" + output] + extra)
        }
        // The source: a cut before the pool fusion, so the convolution's own output, checked against -O0 (no fusion at all).
        XCTAssertEqual(try extract(source, "block2_conv2", "conv.npy").status, 0)
        XCTAssertEqual(try extract(source, "block2_conv2", "conv0.npy", ["-O0"]).status, 0)
        let conv = try NpyFile.read(path: folder + "/conv.npy")
        XCTAssertEqual(conv.shape, [1, 8, 8, 8])
        XCTAssertLessThan(maximumDifference(conv, try NpyFile.read(path: folder + "/conv0.npy")), 1e-4)
        // The compiled file gives the pool's output exactly as the source does.
        XCTAssertEqual(try extract(source, "block2_pool", "pool.npy").status, 0)
        let pooled = try extract(folder + "/m.keelc", "block2_pool", "pool_c.npy")
        XCTAssertEqual(pooled.status, 0, pooled.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: folder + "/pool_c.npy"), FileManager.default.contents(atPath: folder + "/pool.npy"))
        // The fused convolution is refused with the name that works, naming the .keelc.
        let fused = try extract(folder + "/m.keelc", "block2_conv2", "x.npy")
        XCTAssertEqual(fused.status, 1)
        XCTAssertTrue(fused.stderr.contains("\(folder)/m.keelc: cannot cut at 'block2_conv2': it is computed in one step with 'block2_pool'"), fused.stderr)
        let typo = try extract(folder + "/m.keelc", "block2_pol", "x.npy")
        XCTAssertTrue(typo.stderr.contains("\(folder)/m.keelc: no layer named 'block2_pol'; did you mean 'block2_pool'?"), typo.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.npy"))
        // Every other layer of the source is either cut exactly (same bytes as the source) or refused.
        for layer in ["block1_pool", "flatten", "dense", "batch_normalization", "activation", "logits"] {
            let fromSource = try extract(source, layer, "s.npy")
            let fromCompiled = try extract(folder + "/m.keelc", layer, "c.npy")
            XCTAssertEqual(fromSource.status, 0, fromSource.stderr)
            if fromCompiled.status == 0 {
                let a = try NpyFile.read(path: folder + "/s.npy"), b = try NpyFile.read(path: folder + "/c.npy")
                XCTAssertEqual(a.shape, b.shape, layer)
                XCTAssertLessThan(maximumDifference(a, b), 1e-4, layer)
            } else {
                XCTAssertTrue(fromCompiled.stderr.contains("cannot cut at '\(layer)': "), fromCompiled.stderr)
            }
        }
    }

    func testAGraphOutputIsNotFusedAway() throws {
        let graph = """
        model two_outputs
        input image: f32[N, 16, 16, 3]
        conv = conv2d(4, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        output conv
        output pool
        """
        try graph.write(toFile: folder + "/two.keel", atomically: true, encoding: .utf8)
        try NpyFile.write(Tensor(shape: [1, 16, 16, 3], values: (0..<768).map { Float($0 % 17) / 8 - 1 }), to: folder + "/x.npy")
        XCTAssertEqual(try keel(["run", folder + "/two.keel", "--input", folder + "/x.npy", "--output", folder + "/o2.npy"]).status, 0)
        XCTAssertEqual(try keel(["run", folder + "/two.keel", "--input", folder + "/x.npy", "--output", folder + "/o0.npy", "-O0"]).status, 0)
        let conv = try NpyFile.read(path: folder + "/o2.conv.npy")
        XCTAssertEqual(conv.shape, [1, 16, 16, 4])
        XCTAssertLessThan(maximumDifference(conv, try NpyFile.read(path: folder + "/o0.conv.npy")), 1e-5)
        XCTAssertLessThan(maximumDifference(try NpyFile.read(path: folder + "/o2.pool.npy"), try NpyFile.read(path: folder + "/o0.pool.npy")), 1e-5)
    }

    func testONNXOutputsAndKerasLayerNamesAreCutPoints() throws {
        let onnx = fixtures + "tf2onnx.onnx"
        let check = try keel(["check", onnx])
        XCTAssertTrue(check.stdout.contains("  logits: f32[N,3]"), check.stdout)
        func extract(_ model: String, _ layer: String, _ output: String, _ extra: [String] = []) throws -> CLITests.Result {
            try keel(["extract", model, "--at", layer, "samples/coffee.jpg", "--preprocess", "keras_vgg16", "--output", folder + "/" + output] + extra)
        }
        // The name `check` lists, and the Keras layer name inside tf2onnx's node names.
        let logits = try extract(onnx, "logits", "logits.npy")
        XCTAssertEqual(logits.status, 0, logits.stderr)
        let pool = try extract(onnx, "block2_pool", "pool.npy")
        XCTAssertEqual(pool.status, 0, pool.stderr)
        // The same layer of the .keel graph with the file's weights bound (another import path entirely).
        let bound = try extract(fixtures + "mini_vgg.keel", "block2_pool", "bound.npy", ["--weights", onnx])
        XCTAssertEqual(bound.status, 0, bound.stderr)
        let fromONNX = try NpyFile.read(path: folder + "/pool.npy"), fromKeel = try NpyFile.read(path: folder + "/bound.npy")
        XCTAssertEqual(fromONNX.shape, [1, 4, 4, 8])
        XCTAssertLessThan(maximumDifference(fromONNX, fromKeel), 1e-4)
        let typo = try extract(onnx, "block2_pol", "x.npy")
        XCTAssertEqual(typo.status, 1)
        XCTAssertTrue(typo.stderr.contains("\(onnx): no layer named 'block2_pol'; did you mean 'block2_pool'?"), typo.stderr)
    }
}
