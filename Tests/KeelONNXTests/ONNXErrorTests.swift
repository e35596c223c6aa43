import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// Bad input gives one clear ONNXError line naming the file (and node), never a crash.
final class ONNXErrorTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("keel-onnx-errors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let url = scratch.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func importError(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> ONNXError? {
        let error = onnxError({ _ = try importONNXGraph(path: path) }, file: file, line: line)
        if let error {
            XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(path), "names the file: \(error)", file: file, line: line)
        }
        return error
    }

    func testTruncatedFile() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("cnn.onnx"))))
        let path = try write(Array(bytes.prefix(bytes.count / 2)), "truncated.onnx")
        guard case .malformed? = importError(path) else { return XCTFail("a truncated file is malformed") }
    }

    func testRandomBytes() throws {
        var generator = SeededGenerator(seed: 7)
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = try write(bytes, "random.onnx")
        XCTAssertNotNil(importError(path))
    }

    func testEmptyAndForeignFilesAreNotModels() throws {
        guard case .notAModel? = importError(try write([], "empty.onnx")) else { return XCTFail("empty file") }
        // Another ONNX message (a TensorProto) is refused as a model, whichever way it fails.
        switch importError(Fixtures.path("cnn_input_0.pb")) {
        case .notAModel?, .malformed?: break
        case let other: XCTFail("tensor file: \(String(describing: other))")
        }
    }

    func testMissingFile() throws {
        guard case .unreadable? = importError(scratch.appendingPathComponent("absent.onnx").path) else {
            return XCTFail("missing file")
        }
    }

    func testUnknownOpNamesOpAndNode() {
        let error = importError(Fixtures.path("unknown_op.onnx"))
        XCTAssertEqual(error, .unsupportedOp(path: Fixtures.path("unknown_op.onnx"), node: "mystery", op: "FancyOp", domain: ""))
        XCTAssertTrue(error?.description.contains("'FancyOp'") ?? false)
        XCTAssertTrue(error?.description.contains("'mystery'") ?? false)
    }

    func testOpsetNewerThanSupported() {
        let error = importError(Fixtures.path("opset_too_new.onnx"))
        XCTAssertEqual(error, .opsetTooNew(path: Fixtures.path("opset_too_new.onnx"), domain: "", version: 99,
                                           supported: newestSupportedONNXOpset))
        XCTAssertTrue(error?.description.contains("opset 99") ?? false)
    }

    func testUndefinedInput() {
        XCTAssertEqual(importError(Fixtures.path("undefined_input.onnx")),
                       .undefinedValue(path: Fixtures.path("undefined_input.onnx"), node: "adder", value: "nowhere"))
    }

    func testUnsupportedDType() {
        let error = importError(Fixtures.path("bad_dtype.onnx"))
        XCTAssertEqual(error, .unsupportedDType(path: Fixtures.path("bad_dtype.onnx"), name: "q", dataType: 2))
        XCTAssertTrue(error?.description.contains("UINT8") ?? false)
    }

    func testExternalDataProblems() {
        for (name, phrase) in [("missing_external", "missing file"), ("external_out_of_bounds", "beyond the end"),
                               ("external_escape", "outside the model's folder")] {
            let error = importError(Fixtures.path(name + ".onnx"))
            guard case .externalData? = error else { XCTFail("\(name): \(String(describing: error))"); continue }
            XCTAssertTrue(error?.description.contains(phrase) ?? false, "\(name): \(String(describing: error))")
        }
    }

    func testMalformedTensorFile() throws {
        let path = try write([0x0A, 0xFF, 0xFF], "bad.pb")
        guard case .malformed? = onnxError({ _ = try loadTensorProto(path: path) }) else { return XCTFail("bad tensor") }
    }
}
