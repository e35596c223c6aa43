import Foundation
import Keel
import XCTest

/// `keel extract` and `keel run --image` on the bundled samples with a small graph, including the failure paths.
final class ImageWorkflowTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-extract-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/empty", withIntermediateDirectories: true)
        let graph = """
        model tiny
        input image: f32[N, 32, 32, 3] preprocess: keras_vgg16
        conv = conv2d(4, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        flat = flatten()
        logits = dense(3)
        output logits
        """
        try graph.write(toFile: folder + "/tiny.keel", atomically: true, encoding: .utf8)
        try "hello, this is not a picture".write(toFile: folder + "/text.png", atomically: true, encoding: .utf8)
        let classifier = """
        model classifier
        input image: f32[N, 32, 32, 3] preprocess: torch
        conv = conv2d(4, 3, padding: same, activation: relu)
        flat = flatten()
        probs = dense(3, activation: softmax)
        output probs labels: "labels.txt"
        """
        try classifier.write(toFile: folder + "/classifier.keel", atomically: true, encoding: .utf8)
        try "cat\ndog\nbird\n".write(toFile: folder + "/labels.txt", atomically: true, encoding: .utf8)
    }

    func testRunImagesPrintsTopClassesByName() throws {
        let result = try keel(["run", folder + "/classifier.keel", "--image", "samples/coffee.jpg", "--image", "samples/rocket.jpg", "--top", "3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("probs for ") }, ["probs for samples/coffee.jpg:", "probs for samples/rocket.jpg:"])
        // Three classes, each listed once per image, with softmax scores that sum to 1.
        let ranked = lines.filter { $0.hasPrefix("  ") }
        XCTAssertEqual(ranked.count, 6)
        XCTAssertEqual(Set(ranked.prefix(3).compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) }), ["cat", "dog", "bird"])
        let total = ranked.prefix(3).compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        XCTAssertEqual(total, 1, accuracy: 2e-4)
        XCTAssertTrue(result.stderr.contains("seeded-random weights"), result.stderr)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func keel(_ arguments: [String]) throws -> CLITests.Result { try CLITests.keel(arguments) }

    func testExtractsSamplesInSortedOrderWithSidecar() throws {
        let result = try keel(["extract", folder + "/tiny.keel", "--at", "pool", "samples", "--output", folder + "/f.npy", "--batch", "3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let features = try NpyFile.read(path: folder + "/f.npy")
        XCTAssertEqual(features.shape, [7, 16, 16, 4])
        let order = try String(contentsOfFile: folder + "/f.files.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(order, ["astronaut.jpg", "camera_grey.png", "chelsea.jpg", "chelsea_rgba.png", "coffee.jpg",
                               "coffee_palette.png", "rocket.jpg"].map { "samples/" + $0 })
        // The cut ran only up to 'pool': features are ReLU outputs max-pooled, so never negative.
        XCTAssertGreaterThanOrEqual(features.values.min() ?? -1, 0)
    }

    func testShardsPartitionTheFileList() throws {
        var rows: [String] = []
        for index in 0..<3 {
            let output = folder + "/s\(index).npy"
            let result = try keel(["extract", folder + "/tiny.keel", "--at", "logits", "samples", "--output", output, "--shard", "\(index)/3"])
            XCTAssertEqual(result.status, 0, result.stderr)
            rows += try String(contentsOfFile: folder + "/s\(index).files.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        }
        XCTAssertEqual(rows, try ImageFiles.list(["samples"]))
    }

    func testBadInputsAreOneLineErrorsWithNoPartialOutput() throws {
        let cases: [([String], String)] = [
            ([folder + "/empty"], "the folder has no .jpg, .jpeg or .png files"),
            ([folder + "/text.png"], "text.png"),
            (["samples/nothing.jpg"], "samples/nothing.jpg: no such file or folder"),
        ]
        for (inputs, message) in cases {
            let result = try keel(["extract", folder + "/tiny.keel", "--at", "pool"] + inputs + ["--output", folder + "/bad.npy"])
            XCTAssertEqual(result.status, 1, "\(inputs)")
            XCTAssertTrue(result.stderr.contains(message), "\(inputs): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/bad.npy"), "\(inputs)")
        }
        let unwritable = try keel(["extract", folder + "/tiny.keel", "--at", "pool", "samples", "--output", "/nonexistent/f.npy"])
        XCTAssertEqual(unwritable.status, 1)
        XCTAssertTrue(unwritable.stderr.contains("/nonexistent/f.npy: cannot write"), unwritable.stderr)
        let unknownLayer = try keel(["extract", folder + "/tiny.keel", "--at", "pol", "samples", "--output", folder + "/bad.npy"])
        XCTAssertEqual(unknownLayer.status, 1)
        XCTAssertTrue(unknownLayer.stderr.contains("no layer named 'pol'; did you mean 'pool'?"), unknownLayer.stderr)
    }

    func testKeepGoingProcessesTheGoodFiles() throws {
        let result = try keel(["extract", folder + "/tiny.keel", "--at", "pool", "samples/coffee.jpg", folder + "/text.png",
                               "samples/rocket.jpg", "--output", folder + "/k.npy", "--keep-going"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("text.png"), result.stderr)
        XCTAssertEqual(try NpyFile.read(path: folder + "/k.npy").shape, [2, 16, 16, 4])
        XCTAssertEqual(try String(contentsOfFile: folder + "/k.files.txt", encoding: .utf8), "samples/coffee.jpg\nsamples/rocket.jpg\n")
    }
}
