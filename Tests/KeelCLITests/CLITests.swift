import Foundation
import Keel
import XCTest

/// Runs the built `keel` executable as a user would and checks what reaches the terminal.
final class CLITests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func keel(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        // On Linux the test bundle's URL is the products folder; on macOS it is the .xctest inside it.
        let bundle = Bundle(for: CLITests.self).bundleURL
        let products = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        let process = Process()
        process.executableURL = products.appendingPathComponent("keel")
        process.arguments = arguments
        process.currentDirectoryURL = repository
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// A temporary folder holding `graph` as small.keel and an input x.npy of `shape` (values in
    /// [-1, 1)), for tests that run a small model through the CLI; removed by the caller.
    static func smallModelFolder(_ name: String, graph: String, inputShape shape: [Int]) throws -> String {
        let folder = NSTemporaryDirectory() + "keel-\(name)-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try graph.write(toFile: folder + "/small.keel", atomically: true, encoding: .utf8)
        let input: [Float] = (0..<shape.reduce(1, *)).map { Float(($0 * 37) % 101) / 50 - 1 }
        try NpyFile.write(try Tensor(shape: shape, values: input), to: folder + "/x.npy")
        return folder
    }

    func testCheckPrintsOutputShapes() throws {
        let result = try Self.keel(["check", "graphs/vgg16_two_heads.keel"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("logits: f32[N,10]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("tokens: f32[N,49,768]"), result.stdout)
    }

    /// Keras's model.summary() totals for the seed's models.
    func testSummaryJSONMatchesKeras() throws {
        let expected: [(String, Int, Int, Int)] = [
            ("graphs/vgg16.keel", 14_714_688, 14_714_688, 0),
            ("graphs/vgg16_top.keel", 138_357_544, 138_357_544, 0),
            ("graphs/vgg16_resnet_head.keel", 21_141_066, 6_425_866, 14_715_200),
            ("graphs/vgg16_vit_head.keel", 15_110_208, 395_520, 14_714_688),
        ]
        for (file, total, trainable, nonTrainable) in expected {
            let result = try Self.keel(["summary", "--json", file])
            XCTAssertEqual(result.status, 0, result.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(json["total_params"] as? Int, total, file)
            if file.hasSuffix("vgg16.keel") || file.hasSuffix("top.keel") {
                XCTAssertEqual((json["trainable_params"] as? Int).map { $0 + (json["non_trainable_params"] as? Int ?? 0) }, total, file)
            } else {
                XCTAssertEqual(json["trainable_params"] as? Int, trainable, file)
                XCTAssertEqual(json["non_trainable_params"] as? Int, nonTrainable, file)
            }
            let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
            XCTAssertTrue(layers.contains { $0["name"] as? String == "block1_conv1" }, file)
        }
        let vit = try Self.keel(["summary", "--json", "graphs/vgg16_vit_head.keel"])
        let layers = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(vit.stdout.utf8)) as? [String: Any])?["layers"] as? [[String: Any]])
        let last = try XCTUnwrap(layers.last)
        XCTAssertEqual(last["output_shape"] as? [NSNumber?] as? [Int?] ?? [], [])
        XCTAssertEqual((last["output_shape"] as? [Any])?.count, 3)
        XCTAssertTrue((last["output_shape"] as? [Any])?.first is NSNull)
    }

    func testBadFilesGiveOneLineErrorsAndExitOne() throws {
        let cases: [([String], String)] = [
            (["check", "graphs/missing.keel"], "graphs/missing.keel: no such file"),
            (["check", "Package.swift"], "unknown model type"),
            (["check", "graphs"], "is a folder"),
        ]
        for (arguments, message) in cases {
            let result = try Self.keel(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Fatal error"), result.stderr)
        }
    }

    func testWrongInputShapeIsRefusedWithBothShapes() throws {
        let folder = NSTemporaryDirectory() + "keel-cli-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try NpyFile.write(Tensor(zeros: [1, 200, 224, 3]), to: folder + "/x.npy")
        try NpyFile.write(Tensor(zeros: [200, 224, 3]), to: folder + "/rank3.npy")
        let wrongShape = try Self.keel(["run", "graphs/vgg16.keel", "--input", folder + "/x.npy", "--output", folder + "/y.npy"])
        XCTAssertEqual(wrongShape.status, 1)
        XCTAssertTrue(wrongShape.stderr.contains("input 'input_1' expects shape [N,224,224,3] but was given [1,200,224,3]"), wrongShape.stderr)
        let wrongRank = try Self.keel(["run", "graphs/vgg16.keel", "--input", folder + "/rank3.npy", "--output", folder + "/y.npy"])
        XCTAssertEqual(wrongRank.status, 1)
        XCTAssertTrue(wrongRank.stderr.contains("expects rank 4"), wrongRank.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/y.npy"))
    }
}
