import Foundation
import KeelIR

/// Writes a `[count, …]` float32 .npy row by row, for outputs too large to hold in memory
/// (features of a whole dataset). Rows go to a `StagedFile` after a header space reserved at the
/// front; `finish` writes the real header there, and the caller commits the file (with its
/// sidecars, in one `OutputTransaction`), so the output appears whole or not at all.
public final class NpyStreamWriter {
    /// Bytes reserved for the header: room for any realistic shape, and a multiple of 64.
    public static let reservedHeaderBytes = 256

    public let file: StagedFile
    public let rowShape: [Int]
    public private(set) var rows: Int

    /// Starts a new file, or continues one whose first `rows` rows are already in `file`
    /// (opened with `resumeAt: reservedHeaderBytes + rows · row bytes`).
    public init(file: StagedFile, rowShape: [Int], rows: Int = 0) throws {
        self.file = file
        self.rowShape = rowShape
        self.rows = rows
        if rows == 0 { try file.write(Data(count: Self.reservedHeaderBytes)) }
    }

    public static func rowBytes(_ rowShape: [Int]) -> Int { rowShape.reduce(1, *) * MemoryLayout<Float>.size }

    /// Appends rows given as consecutive values of `rowShape` each.
    public func append(_ values: ArraySlice<Float>) throws {
        let rowSize = rowShape.reduce(1, *)
        guard rowSize > 0, values.count % rowSize == 0 else {
            throw RuntimeError.invalidTensor("\(values.count) values are not whole rows of \(Shape(known: rowShape))")
        }
        try values.withUnsafeBytes { try file.write($0) }
        rows += values.count / rowSize
    }

    /// Appends whole rows given as their little-endian bytes (rows copied from another .npy).
    public func append(bytes: Data) throws {
        let rowBytes = Self.rowBytes(rowShape)
        guard rowBytes > 0, bytes.count % rowBytes == 0 else {
            throw RuntimeError.invalidTensor("\(bytes.count) bytes are not whole rows of \(Shape(known: rowShape))")
        }
        try file.write(bytes)
        rows += bytes.count / rowBytes
    }

    /// Writes the header for the rows appended; the file is then ready to commit.
    public func finish() throws {
        let header = NpyFile.header(shape: [rows] + rowShape, alignment: Self.reservedHeaderBytes)
        guard header.count == Self.reservedHeaderBytes else {
            throw RuntimeError.file(path: file.path, reason: "shape \(Shape(known: [rows] + rowShape)) does not fit the .npy header")
        }
        try file.write(header, at: 0)
    }
}
