import Foundation
import Keel
import XCTest

/// `labels:` files are checked with the model: present, regular, inside the model's folder tree,
/// one name per class; and every row of a batch is labelled with where it came from (#15 item 8, #16 F7).
final class LabelsTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-labels-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/model", withIntermediateDirectories: true)
        try "cat\ndog\nbird\n".write(toFile: folder + "/model/labels.txt", atomically: true, encoding: .utf8)
        try "secret\nlines\nhere\n".write(toFile: folder + "/outside.txt", atomically: true, encoding: .utf8)
        try NpyFile.write(Tensor(shape: [3, 4], values: (0..<12).map { Float($0 % 5) - 2 }), to: folder + "/x.npy")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A classifier over [N,4] with 3 classes whose labels come from `labels`.
    private func model(labels: String, classes: Int = 3) throws -> String {
        let path = folder + "/model/classifier.keel"
        let graph = """
        model classifier
        input x: f32[N, 4]
        probs = dense(\(classes), activation: softmax)
        output probs labels: "\(labels)"
        """
        try graph.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func keel(_ arguments: [String]) throws -> CLITests.Result { try CLITests.keel(arguments) }

    func testBatchedInputRowsAreLabelledWithTheirFileAndIndex() throws {
        let result = try keel(["run", try model(labels: "labels.txt"), "--input", folder + "/x.npy", "--top", "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let headers: [String] = result.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("probs for ") }
        let expected: [String] = (0..<3).map { "probs for " + folder + "/x.npy[\($0)]:" }
        XCTAssertEqual(headers, expected)
        XCTAssertTrue(result.stdout.split(separator: "\n").filter { $0.hasPrefix("  1. ") }
            .allSatisfy { ["cat", "dog", "bird"].contains($0.split(separator: " ")[1]) }, result.stdout)
    }

    func testMissingLabelsFileFailsCheck() throws {
        let result = try keel(["check", try model(labels: "missing.txt")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("missing.txt: the labels file of output 'probs' does not exist"), result.stderr)
    }

    func testLabelsFileWithTheWrongLineCountIsAnError() throws {
        try "cat\ndog\nbird\nfish\n".write(toFile: folder + "/model/four.txt", atomically: true, encoding: .utf8)
        let path = try model(labels: "four.txt", classes: 5)
        let check = try keel(["check", path])
        XCTAssertEqual(check.status, 1)
        XCTAssertTrue(check.stderr.contains("four.txt: 4 class names for the 5 classes of output 'probs' [N,5]"), check.stderr)
        let run = try keel(["run", path, "--input", folder + "/x.npy", "--top", "1"])
        XCTAssertEqual(run.status, 1)
        XCTAssertFalse(run.stdout.contains("class 4"), run.stdout)
    }

    func testLabelsOutsideTheModelsFolderAreRefused() throws {
        for labels in ["../outside.txt", folder + "/outside.txt"] {
            let path = try model(labels: labels)
            for arguments in [["check", path], ["run", path, "--input", folder + "/x.npy", "--top", "1"]] {
                let result = try keel(arguments)
                XCTAssertEqual(result.status, 1, "\(arguments)")
                XCTAssertTrue(result.stderr.contains("the labels file of output 'probs' lies outside the model's folder"), result.stderr)
                XCTAssertFalse(result.stdout.contains("secret"), result.stdout)
            }
        }
        // A symlink inside the folder to a file outside it is outside all the same.
        try FileManager.default.createSymbolicLink(atPath: folder + "/model/link.txt", withDestinationPath: folder + "/outside.txt")
        let linked = try keel(["check", try model(labels: "link.txt")])
        XCTAssertEqual(linked.status, 1)
        XCTAssertTrue(linked.stderr.contains("lies outside the model's folder"), linked.stderr)
    }

    func testLabelsMustBeARegularFile() throws {
        XCTAssertEqual(mkfifo(folder + "/model/fifo.txt", 0o600), 0)
        let result = try keel(["check", try model(labels: "fifo.txt")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("the labels file of output 'probs' is not a regular file"), result.stderr)
    }
}
