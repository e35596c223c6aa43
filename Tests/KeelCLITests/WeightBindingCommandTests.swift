import Foundation
import Keel
import KeelTestSupport
import XCTest

/// `keel run --weights`: binding ONNX weights to a .keel graph as a user does it, with
/// `--explain`, and the one-line errors when binding fails (fixtures: Tests/KeelTests/Fixtures/weights).
final class WeightBindingCommandTests: XCTestCase {
    func testExplainPrintsOneLinePerParameter() throws {
        let result = try CLITests.keel(["run", Self.relative + "mini_vgg.keel", "--weights", Self.relative + "pytorch.onnx",
                                        "--match", "order", "--explain"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        // 3 convs and 2 denses with kernel and bias, a BatchNorm with four vectors.
        XCTAssertEqual(lines.count, 14, result.stdout)
        XCTAssertTrue(lines.contains("block1_conv1/kernel f32[3,3,3,4] <- features.0.weight [4,3,3,3] (OIHW->HWIO)"), result.stdout)
        XCTAssertTrue(lines.contains("block2_conv2/bias f32[8] <- features.5.bias [8]"), result.stdout)
        XCTAssertTrue(lines.contains("dense/kernel f32[128,8] <- classifier.0.weight [8,128] ([out,in]->[in,out], rows (c,h,w)->(h,w,c))"), result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("batch_normalization/gamma f32[8] <- classifier.1.weight [8] (epsilon 1e-05->0.001") }, result.stdout)
        XCTAssertTrue(lines.contains("batch_normalization/moving_variance f32[8] <- classifier.1.running_var [8]"), result.stdout)
    }

    func testExplainShowsTheFoldedBatchNormAndUnusedInitializers() throws {
        let result = try CLITests.keel(["run", Self.relative + "mini_vgg.keel", "--weights", Self.relative + "tf2onnx.onnx", "--explain"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("batch_normalization/gamma f32[8] <- model/batch_normalization/batchnorm/mul:0 [8] (folded batch norm: gamma = scale·sqrt(1+0.001))"), result.stdout)
        XCTAssertTrue(lines.contains("batch_normalization/moving_mean f32[8] <- 0 (folded batch norm)"), result.stdout)
        XCTAssertTrue(lines.contains("dense/kernel f32[128,8] <- model/dense/MatMul/ReadVariableOp:0 [128,8]"), result.stdout)
        // A graph without the last dense layer leaves its two initializers unused.
        let truncated = try fixtures.editedGraph(replacing: "dense_1 = dense(3)\n\noutput logits = dense_1", with: "output logits = activation", output: nil)
        let partial = try CLITests.keel(["run", truncated, "--weights", Self.relative + "tf2onnx.onnx", "--explain"])
        XCTAssertEqual(partial.status, 0, partial.stderr)
        XCTAssertTrue(partial.stdout.contains("unused: model/dense_1/MatMul/ReadVariableOp:0 [8,3]"), partial.stdout)
        XCTAssertTrue(partial.stdout.contains("unused: model/dense_1/BiasAdd/ReadVariableOp:0 [3]"), partial.stdout)
    }

    func testRenamedLayerIsOneErrorListingEveryUnboundParameter() throws {
        let renamed = try fixtures.editedGraph(replacing: "block2_conv2 = ", with: "block2_conv3 = ", output: nil)
        let result = try CLITests.keel(["run", renamed, "--weights", Self.relative + "tf2onnx.onnx",
                                        "--input", Self.relative + "input_b2.npy", "--output", fixtures.path("out.npy")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.isEmpty, result.stdout)
        let errors = result.stderr.components(separatedBy: "error:").count - 1
        XCTAssertEqual(errors, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("cannot bind 2 parameters"), result.stderr)
        XCTAssertTrue(result.stderr.contains("layer 'block2_conv3' (block2_conv3/kernel f32[3,3,8,8], block2_conv3/bias f32[8]): no conv weights in the file are named 'block2_conv3'; closest: block2_conv2"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixtures.path("out.npy")))
    }

    /// A Keras head with its own layer names: one line per layer, the names the file has, the
    /// closest of them, and whether --match order would bind (it does, and gives ONNX Runtime's numbers).
    func testRenamedHeadListsTheFilesNamesAndSuggestsMatchingByOrder() throws {
        var renamed = try fixtures.editedGraph(replacing: "dense = dense(8)\nbatch_normalization = batch_norm()", with: "dense_256 = dense(8)\nbn = batch_norm()", output: nil)
        let text = try String(contentsOfFile: renamed, encoding: .utf8)
        renamed = fixtures.path("renamed_head.keel")
        try text.replacingOccurrences(of: "dense_1 = dense(3)", with: "logits = dense(3)")
            .replacingOccurrences(of: "output logits = dense_1", with: "output logits = logits")
            .write(toFile: renamed, atomically: true, encoding: .utf8)
        let result = try CLITests.keel(["run", renamed, "--weights", Self.relative + "tf2onnx.onnx",
                                        "--input", Self.relative + "input_b2.npy", "--output", fixtures.path("out.npy")])
        XCTAssertEqual(result.status, 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "error: \(Self.relative)tf2onnx.onnx: cannot bind 8 parameters:", result.stderr)
        XCTAssertEqual(lines.filter { $0.hasPrefix("  layer ") }.count, 3, result.stderr)
        XCTAssertEqual(lines.count, 6, result.stderr)
        XCTAssertTrue(lines.contains("  layer 'dense_256' (dense_256/kernel f32[128,8], dense_256/bias f32[8]): no dense weights in the file are named 'dense_256'; closest: dense_1, dense"), result.stderr)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  layer 'bn' (bn/gamma f32[8], bn/beta f32[8], bn/moving_mean f32[8], bn/moving_variance f32[8]): no batch norm weights in the file are named 'bn'; closest: batch_normalization") }, result.stderr)
        XCTAssertTrue(lines.contains("note: the file's weighted layers are block1_conv1 (conv), block2_conv1 (conv), block2_conv2 (conv), dense (dense), batch_normalization (scale-shift), dense_1 (dense)"), result.stderr)
        XCTAssertTrue(lines.contains { $0.hasPrefix("note: try --match order: it binds all 14 parameters") }, result.stderr)

        let ordered = try CLITests.keel(["run", renamed, "--weights", Self.relative + "tf2onnx.onnx", "--match", "order",
                                         "--input", Self.relative + "input_b2.npy", "--output", fixtures.path("out.npy")])
        XCTAssertEqual(ordered.status, 0, ordered.stderr)
        XCTAssertLessThan(WeightBindingFixtures.relativeError(try NpyFile.read(path: fixtures.path("out.npy")), try fixtures.tensor("tf2onnx_b2_logits.npy")), 1e-4)
    }

    func testMissingOrCorruptWeightsFileIsAOneLineError() throws {
        let corrupt = fixtures.path("corrupt.onnx")
        try Data("not a protobuf \u{1}\u{2}\u{3}".utf8).write(to: URL(fileURLWithPath: corrupt))
        for weights in ["models/missing.onnx", corrupt] {
            for explain in [false, true] {
                var arguments = ["run", Self.relative + "mini_vgg.keel", "--weights", weights,
                                 "--input", Self.relative + "input_b2.npy", "--output", fixtures.path("out.npy")]
                if explain { arguments.append("--explain") }
                let result = try CLITests.keel(arguments)
                XCTAssertEqual(result.status, 1, "\(arguments)")
                let lines = result.stderr.split(separator: "\n")
                XCTAssertEqual(lines.count, 1, result.stderr)
                XCTAssertTrue(lines.first?.contains(weights) ?? false, result.stderr)
                XCTAssertTrue(lines.first?.contains("error:") ?? false, result.stderr)
            }
        }
    }

    func testRunWritesTheBoundModelsOutput() throws {
        let output = fixtures.path("logits.npy")
        let result = try CLITests.keel(["run", Self.relative + "mini_vgg.keel", "--weights", Self.relative + "pytorch.onnx", "--match", "order",
                                        "--input", Self.relative + "input_b2.npy", "--output", output, "--threads", "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.stderr.contains("seeded-random"), result.stderr)
        XCTAssertLessThan(WeightBindingFixtures.relativeError(try NpyFile.read(path: output), try fixtures.tensor("pytorch_b2_logits.npy")), 1e-4)
    }

    // MARK: Helpers

    /// The same files as the `keel` command sees them (it runs in the repository).
    static let relative = WeightBindingFixtures.relativeFolder

    private let fixtures = WeightBindingFixtures()

    override func tearDown() {
        fixtures.removeScratch()
        super.tearDown()
    }
}
