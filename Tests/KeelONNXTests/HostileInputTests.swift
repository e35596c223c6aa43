import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// ONNX files made to hang or escape the loader (issue 16).
final class HostileInputTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("keel-onnx-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// F8: external data that is a FIFO blocked the loader in open(2) forever.
    func testF8ExternalDataThatIsAFIFOIsRefused() throws {
        let model = scratch.appendingPathComponent("fifo.onnx")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Fixtures.path("external_fifo.onnx")), to: model)
        XCTAssertEqual(mkfifo(scratch.appendingPathComponent("fifo.bin").path, 0o600), 0)
        let start = Date()
        XCTAssertThrowsError(try importONNXGraph(path: model.path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("external data of tensor 'w': location 'fifo.bin' is not a regular file"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    /// External data in an allowed folder outside the model's tree is read; without the
    /// permission the same file is refused.
    func testExternalDataOutsideTheFolderNeedsAnAllowedPath() throws {
        let model = scratch.appendingPathComponent("models/fifo.onnx")
        try FileManager.default.createDirectory(at: model.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Fixtures.path("external_fifo.onnx")), to: model)
        let weights = scratch.appendingPathComponent("shared/weights.bin")
        try FileManager.default.createDirectory(at: weights.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(count: 4096).write(to: weights)
        try FileManager.default.createSymbolicLink(atPath: model.deletingLastPathComponent().appendingPathComponent("fifo.bin").path,
                                                   withDestinationPath: weights.path)
        XCTAssertThrowsError(try importONNXGraph(path: model.path)) { error in
            XCTAssertTrue("\(error)".contains("location 'fifo.bin' lies outside the model's folder"), "\(error)")
        }
        do {
            _ = try importONNXGraph(path: model.path, confinement: PathConfinement(allowing: [weights.deletingLastPathComponent().path]))
        } catch {
            XCTAssertFalse("\(error)".contains("outside"), "allowed folder still refused: \(error)")
        }
    }
}
