import Foundation
import KeelIR

/// Writes a `[count, …]` float32 .npy row by row, for outputs too large to hold in memory
/// (features of a whole dataset). Rows go to a hidden temporary file; `finish` writes the real
/// header into the space reserved at the front and renames the file into place, so the output
/// appears whole or not at all.
public final class NpyStreamWriter {
    /// Bytes reserved for the header: room for any realistic shape, and a multiple of 64.
    static let reservedHeaderBytes = 256

    public let path: String
    public let rowShape: [Int]
    public private(set) var rows = 0
    private let temporaryPath: String
    private let handle: FileHandle

    public init(path: String, rowShape: [Int]) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        guard access(directory, W_OK) == 0 else {
            throw RuntimeError.file(path: path, reason: "cannot write: folder '\(directory)' does not exist or is not writable")
        }
        temporaryPath = directory + "/.\(url.lastPathComponent).\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporaryPath, contents: Data(count: Self.reservedHeaderBytes)),
              let handle = FileHandle(forWritingAtPath: temporaryPath) else {
            throw RuntimeError.file(path: path, reason: "cannot write: permission denied or disk full")
        }
        handle.seekToEndOfFile()
        self.path = path
        self.rowShape = rowShape
        self.handle = handle
    }

    /// Appends rows given as consecutive values of `rowShape` each.
    public func append(_ values: ArraySlice<Float>) throws {
        let rowSize = rowShape.reduce(1, *)
        guard rowSize > 0, values.count % rowSize == 0 else {
            throw RuntimeError.invalidTensor("\(values.count) values are not whole rows of \(Shape(known: rowShape))")
        }
        try values.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        rows += values.count / rowSize
    }

    public func finish() throws {
        let header = NpyFile.header(shape: [rows] + rowShape, alignment: Self.reservedHeaderBytes)
        guard header.count == Self.reservedHeaderBytes else {
            cancel()
            throw RuntimeError.file(path: path, reason: "shape \(Shape(known: [rows] + rowShape)) does not fit the .npy header")
        }
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: header)
        try handle.close()
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw RuntimeError.file(path: path, reason: "cannot write: \(reason)")
        }
    }

    /// Removes the temporary file: nothing of a failed run stays on disk.
    public func cancel() {
        try? handle.close()
        unlink(temporaryPath)
    }
}
