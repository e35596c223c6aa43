import Foundation
import KeelRuntime

/// Joins the outputs of `keel extract --shard i/n` into the unsharded output: the rows of every
/// shard in index order and their `.files.txt` likewise. Refuses, naming the file, shards of
/// different runs (file lists, counts), row shapes that differ, a missing, repeated or extra
/// shard, and sidecars that do not match their `.npy`.
public enum ShardMerge {
    struct Part {
        var path: String
        var record: ShardRecord
        var shape: [Int]
        var dataOffset: Int
        var names: Data
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes `output` (and its `.files.txt`); returns the merged shape.
    @discardableResult
    public static func merge(_ paths: [String], into output: String) throws -> [Int] {
        guard !paths.isEmpty else { throw Problem(description: "give the shards' .npy files to merge") }
        var parts = try paths.map(read)
        parts.sort { $0.record.shard < $1.record.shard }
        let first = parts[0]
        for part in parts.dropFirst() {
            guard part.record.count == first.record.count, part.record.total_files == first.record.total_files,
                  part.record.files_hash == first.record.files_hash else {
                throw Problem(description: "\(part.path): shard \(part.record.shard)/\(part.record.count) of \(part.record.total_files) files is not from the same run as \(first.path) (shard \(first.record.shard)/\(first.record.count) of \(first.record.total_files) files)")
            }
            guard part.shape.dropFirst() == first.shape.dropFirst() else {
                throw Problem(description: "\(part.path): rows are \(Shape(known: Array(part.shape.dropFirst()))) but \(first.path)'s are \(Shape(known: Array(first.shape.dropFirst())))")
            }
        }
        var seen: [Int: String] = [:]
        for part in parts {
            if let other = seen[part.record.shard] {
                throw Problem(description: "\(part.path): shard \(part.record.shard)/\(part.record.count) is also given as \(other)")
            }
            seen[part.record.shard] = part.path
        }
        let missing = (0..<first.record.count).filter { seen[$0] == nil }
        guard missing.isEmpty else {
            let names = missing.prefix(8).map { "\($0)/\(first.record.count)" }.joined(separator: ", ")
            throw Problem(description: "shard\(missing.count > 1 ? "s" : "") \(names)\(missing.count > 8 ? " …" : "") missing (shards are numbered from 0 to \(first.record.count - 1))")
        }
        let rowShape = Array(first.shape.dropFirst())
        let transaction = OutputTransaction()
        let data = try StagedFile(path: output)
        transaction.add(data)
        do {
            let writer = try NpyStreamWriter(file: data, rowShape: rowShape)
            let rowBytes = NpyStreamWriter.rowBytes(rowShape)
            for part in parts { try copyRows(of: part, count: part.shape[0] * rowBytes, into: writer) }
            try writer.finish()
            if !data.target.isStream {
                try transaction.stage(parts.reduce(into: Data()) { $0 += $1.names }, to: OutputNaming.fileList(for: output))
            }
            try transaction.commit()
        } catch {
            transaction.cancel()
            throw error
        }
        return [parts.reduce(0) { $0 + $1.shape[0] }] + rowShape
    }

    private static func read(_ path: String) throws -> Part {
        let (shape, dataOffset) = try NpyFile.readHeader(path: path)
        guard !shape.isEmpty else { throw Problem(description: "\(path): a scalar, not rows") }
        let recordPath = ShardRecord.path(for: path)
        guard let recordData = FileManager.default.contents(atPath: recordPath) else {
            throw Problem(description: "\(path): no \(recordPath) beside it; only outputs of `keel extract --shard` can be merged")
        }
        guard let record = try? JSONDecoder().decode(ShardRecord.self, from: recordData) else {
            throw Problem(description: "\(recordPath): not a shard record written by keel extract")
        }
        let listPath = OutputNaming.fileList(for: path)
        guard let names = FileManager.default.contents(atPath: listPath) else {
            throw Problem(description: "\(path): no \(listPath) beside it")
        }
        let lines = names.filter { $0 == UInt8(ascii: "\n") }.count
        guard lines == shape[0] else {
            throw Problem(description: "\(listPath): \(lines) file names for the \(shape[0]) rows of \(path)")
        }
        var info = stat()
        let expected = dataOffset + shape.reduce(1, *) * MemoryLayout<Float>.size
        guard stat(path, &info) == 0, Int(info.st_size) == expected else {
            throw Problem(description: "\(path): the file is not \(formatCount(expected)) bytes long as its shape \(Shape(known: shape)) says")
        }
        return Part(path: path, record: record, shape: shape, dataOffset: dataOffset, names: names)
    }

    private static func copyRows(of part: Part, count: Int, into writer: NpyStreamWriter) throws {
        guard let handle = FileHandle(forReadingAtPath: part.path) else { throw Problem(description: "\(part.path): cannot read the file") }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(part.dataOffset))
        var remaining = count
        while remaining > 0 {
            let rowBytes = NpyStreamWriter.rowBytes(writer.rowShape)
            guard let chunk = try handle.read(upToCount: min(remaining, max(1, (1 << 22) / rowBytes) * rowBytes)), !chunk.isEmpty else {
                throw Problem(description: "\(part.path): the file ended early")
            }
            try writer.append(bytes: chunk)
            remaining -= chunk.count
        }
    }
}
