import Foundation
import Keel
import KeelONNX
import XCTest

/// Models that leave their input's height and width symbolic: run, bench and extract take the
/// sizes from the inputs they are given, every command takes --input-shape, and a model without
/// sizes fails at load with the layer named and the remedy, in one line.
final class InputShapeCommandTests: XCTestCase {
    private func keel(_ arguments: [String]) throws -> CLITests.Result { try CLITests.keel(arguments) }
    private let fixtures = "Tests/KeelConformanceTests/DynamicShapes/"

    private func temporaryFolder() throws -> String {
        let folder = NSTemporaryDirectory() + "keel-input-shape-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The PyTorch-style export at 3×3×33×17 (its second fixture size), against ONNX Runtime's output.
    func testRunTakesTheSizeFromItsInput() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fixture = CLITests.repository.path + "/" + fixtures + "pytorch_free_image_size"
        let input = try loadTensorProto(path: fixture + "/input_1.pb")
        let expected = try loadTensorProto(path: fixture + "/output_1.pb")
        try NpyFile.write(try Tensor(shape: input.shape, values: input.floats()), to: folder + "/x.npy")
        let result = try keel(["run", fixture + "/model.onnx", "--input", folder + "/x.npy", "--output", folder + "/y.npy"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let actual = try NpyFile.read(path: folder + "/y.npy")
        XCTAssertEqual(actual.shape, expected.shape)
        let want = expected.floats()
        let worst = zip(actual.values, want).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, 1e-5 + 1e-3 * (want.map(abs).max() ?? 0))

        let bench = try keel(["bench", fixture + "/model.onnx", "--input", folder + "/x.npy", "--iterations", "1"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("batch 3"), bench.stdout)
    }

    /// Output shapes worked out by hand: 24×20 pooled 2×2 is 12×10 with the convolution's 8
    /// channels; 64×48 through a pool and a stride-2 convolution leaves 6 channels after the mean.
    func testCheckAndSummaryTakeInputShape() throws {
        let keras = fixtures + "tf2onnx_free_image_size/model.onnx"
        let check = try keel(["check", keras, "--input-shape", "?x24x20x3"])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stdout.contains("y: f32[N,12,10,8]"), check.stdout)
        let fixedBatch = try keel(["check", fixtures + "pytorch_free_image_size/model.onnx", "--input-shape", "2x3x64x48"])
        XCTAssertTrue(fixedBatch.stdout.contains("y: f32[2,6]"), fixedBatch.stdout + fixedBatch.stderr)
        let summary = try keel(["summary", keras, "--input-shape", "?,24,20,3"])
        XCTAssertEqual(summary.status, 0, summary.stderr)
        XCTAssertTrue(summary.stdout.contains("[N,8,24,20]"), summary.stdout)
    }

    func testSizesThatCannotApplyAreRefusedInOneLine() throws {
        let model = fixtures + "pytorch_free_image_size/model.onnx"
        let cases: [([String], String)] = [
            ([], "needs a known height and width but input 'x' [N,3,H,W] is symbolic there"),
            (["--input-shape", "1x3x64"], "input 'x' is [N,3,H,W], rank 4, but the shape given for it has rank 3: [1,3,64]"),
            (["--input-shape", "1x4x64x64"], "input 'x' is [N,3,H,W] but the shape given for it is [1,4,64,64]: axis 1 is 3"),
            (["--input-shape", "image=1x3x64x64"], "a shape is given for input 'image', which the model does not have (its inputs: x)"),
            (["--input-shape", "1x3x64x0"], "input shape '1x3x64x0': write positive extents"),
        ]
        for (arguments, message) in cases {
            let result = try keel(["check", model] + arguments)
            XCTAssertEqual(result.status, arguments.last == "1x3x64x0" ? 64 : 1, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stdout.isEmpty, "\(arguments): \(result.stdout)")
            if arguments.last != "1x3x64x0" {
                XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            }
        }
    }

    /// A .keel graph may leave them symbolic too; a .keelc compiled at a size runs at that size only.
    func testKeelGraphAndCompiledModelWithFreeSize() throws {
        let graph = """
        model free
        input x: f32[N, H, W, 3]
        c1 = conv2d(8, 3, padding: same, activation: relu)
        p1 = max_pool2d(2)
        output p1
        """
        let folder = try CLITests.smallModelFolder("free-size", graph: graph, inputShape: [2, 10, 14, 3])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try keel(["run", folder + "/small.keel", "--input", folder + "/x.npy"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("p1: [2,5,7,8]"), run.stdout)

        let compile = try keel(["compile", folder + "/small.keel", "--input-shape", "?x10x14x3", "-o", folder + "/small.keelc"])
        XCTAssertEqual(compile.status, 0, compile.stderr)
        let compiled = try keel(["run", folder + "/small.keelc", "--input", folder + "/x.npy"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        XCTAssertTrue(compiled.stdout.contains("p1: [2,5,7,8]"), compiled.stdout)
        try NpyFile.write(Tensor(zeros: [1, 12, 14, 3]), to: folder + "/other.npy")
        let other = try keel(["run", folder + "/small.keelc", "--input", folder + "/other.npy"])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("input 'x' expects shape [N,10,14,3] but was given [1,12,14,3]"), other.stderr)
    }
}
