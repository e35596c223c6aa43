import Foundation
import XCTest
@testable import KeelRuntime

/// The fixtures were written by NumPy (`np.save`), so these tests read files NumPy made.
final class NpyFileTests: XCTestCase {
    private func fixture(_ name: String) -> String {
        Bundle.module.path(forResource: "Fixtures/\(name)", ofType: nil) ?? name
    }

    func testReadsNumpyFloat32() throws {
        let tensor = try NpyFile.read(path: fixture("arange_2x3.npy"))
        XCTAssertEqual(tensor.shape, [2, 3])
        XCTAssertEqual(tensor.values, [0, 0.25, 0.5, 0.75, 1.0, 1.25])
    }

    func testReadsOneElementVector() throws {
        let tensor = try NpyFile.read(path: fixture("scalar_vector.npy"))
        XCTAssertEqual(tensor.shape, [1])
        XCTAssertEqual(tensor.values, [1.5])
    }

    func testRejectsFloat64WithReason() {
        XCTAssertThrowsError(try NpyFile.read(path: fixture("float64.npy"))) { error in
            XCTAssertTrue("\(error)".contains("dtype <f8 is not float32 little-endian"), "\(error)")
        }
    }

    func testRejectsFortranOrder() {
        XCTAssertThrowsError(try NpyFile.read(path: fixture("fortran.npy"))) { error in
            XCTAssertTrue("\(error)".contains("Fortran order is not supported"), "\(error)")
        }
    }

    func testRejectsTruncatedAndGarbage() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: fixture("arange_2x3.npy")))
        for length in [0, 5, 9, 20, good.count - 1] {
            XCTAssertThrowsError(try NpyFile.decode(good.prefix(length), path: "x.npy"), "length \(length)")
        }
        XCTAssertThrowsError(try NpyFile.decode(Data("hello world, not numpy".utf8), path: "x.npy")) { error in
            XCTAssertEqual("\(error)", "x.npy: not a usable .npy file: missing the \\x93NUMPY magic")
        }
    }

    func testEncodeMatchesNumpyBytes() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: fixture("arange_2x3.npy")))
        let tensor = try NpyFile.decode(original, path: "x")
        XCTAssertEqual(NpyFile.encode(tensor), original)
    }

    func testAtomicWriteLeavesNothingOnFailure() throws {
        let tensor = try Tensor(shape: [1], values: [1])
        XCTAssertThrowsError(try NpyFile.write(tensor, to: "/nonexistent-folder/y.npy")) { error in
            XCTAssertTrue("\(error)".contains("folder '/nonexistent-folder' does not exist"), "\(error)")
        }
        let folder = NSTemporaryDirectory() + "keel-npy-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try NpyFile.write(tensor, to: folder + "/y.npy")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["y.npy"])
    }
}
