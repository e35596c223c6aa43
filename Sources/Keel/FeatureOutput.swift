import Foundation
import KeelRuntime

/// The files `keel extract` writes: the features `.npy`, its `.files.txt` and, for a shard, its
/// `.shard.json`, put in place together at the end (sidecars last).
///
/// While running, rows go to `.NAME.partial` and row names to `.NAME.partial-files` in the
/// output's folder, and after every batch `.NAME.partial.json` records how far the run got
/// (files consumed, rows, bytes of names) once both are on disk. An interrupt (SIGINT, SIGTERM,
/// SIGHUP) or a failure removes all three; a run killed outright (SIGKILL, the OOM killer, a
/// lost node) leaves them, and `--resume` continues from the last recorded batch, after checking
/// that the model, options and file list are the same (the `fingerprint`).
public final class FeatureOutput {
    struct Journal: Codable {
        var fingerprint: String
        var files_done: Int
        var rows: Int
        var names_bytes: Int
        var failures: Int
    }

    public let path: String
    public let target: OutputTarget
    public let rowShape: [Int]
    /// Files of the list already handled by the run being continued (0 for a new run).
    public private(set) var filesDone = 0
    /// Unreadable files skipped (`--keep-going`) so far, including by the run being continued.
    public private(set) var failures = 0
    public var rows: Int { writer.rows }
    /// True when an earlier run's rows were kept.
    public let resumed: Bool
    /// True when an earlier, killed run's partial files were found and started over (no --resume).
    public private(set) var restarted = false

    private let fingerprint: String
    private let shardRecord: ShardRecord?
    private let writer: NpyStreamWriter
    private let names: StagedFile?
    private var namesBytes = 0
    private let journalPath: String?

    /// Opens the output. With `resume`, an earlier run's partial files with the same
    /// `fingerprint` are continued; without, any such files are started over.
    public init(path: String, rowShape: [Int], fingerprint: String, resume: Bool, shardRecord: ShardRecord?) throws {
        self.path = path
        self.rowShape = rowShape
        self.fingerprint = fingerprint
        self.shardRecord = shardRecord
        target = try OutputTarget.resolve(path)
        guard !target.isStream else {
            if resume { throw RuntimeError.file(path: path, reason: "--resume needs a regular output file, not a device or FIFO") }
            writer = try NpyStreamWriter(file: try StagedFile(path: path), rowShape: rowShape)
            names = nil
            journalPath = nil
            resumed = false
            return
        }
        let base = "." + URL(fileURLWithPath: target.resolvedPath).lastPathComponent + ".partial"
        let journalPath = target.folder + "/" + base + ".json"
        self.journalPath = journalPath
        try TemporaryFiles.register(journalPath)
        var journal: Journal?
        if resume, let data = FileManager.default.contents(atPath: journalPath) {
            guard let decoded = try? JSONDecoder().decode(Journal.self, from: data) else {
                throw RuntimeError.file(path: path, reason: "cannot resume: '\(journalPath)' is damaged; run again without --resume")
            }
            guard decoded.fingerprint == fingerprint else {
                throw RuntimeError.file(path: path, reason: "cannot resume: the partial run was made with another model, options or file list; run again without --resume to start over")
            }
            let rowBytes = NpyStreamWriter.rowBytes(rowShape)
            guard Self.size(target.folder + "/" + base) ?? -1 >= NpyStreamWriter.reservedHeaderBytes + decoded.rows * rowBytes,
                  Self.size(target.folder + "/" + base + "-files") ?? -1 >= decoded.names_bytes else {
                throw RuntimeError.file(path: path, reason: "cannot resume: the partial files are shorter than '\(journalPath)' records; run again without --resume")
            }
            journal = decoded
        }
        resumed = journal != nil
        restarted = !resume && FileManager.default.fileExists(atPath: journalPath)
        filesDone = journal?.files_done ?? 0
        failures = journal?.failures ?? 0
        let resumedNamesBytes = journal?.names_bytes ?? 0
        namesBytes = resumedNamesBytes
        let rows = journal?.rows ?? 0
        let data = try StagedFile(path: path, partialName: base,
                                  resumeAt: journal.map { _ in NpyStreamWriter.reservedHeaderBytes + rows * NpyStreamWriter.rowBytes(rowShape) })
        do {
            writer = try NpyStreamWriter(file: data, rowShape: rowShape, rows: rows)
            names = try StagedFile(path: path, partialName: base + "-files", resumeAt: journal.map { _ in resumedNamesBytes })
        } catch {
            data.cancel()
            throw error
        }
    }

    /// Appends one batch's rows and names, then records the checkpoint.
    public func append(_ features: ArraySlice<Float>, names rowNames: [String], filesDone: Int, failures: Int) throws {
        try writer.append(features)
        self.filesDone = filesDone
        self.failures = failures
        guard let names, let journalPath else { return }
        let text = Data(FileListText.encode(rowNames).utf8)
        try names.write(text)
        namesBytes += text.count
        try writer.file.synchronize()
        try names.synchronize()
        let journal = Journal(fingerprint: fingerprint, files_done: filesDone, rows: writer.rows, names_bytes: namesBytes, failures: failures)
        let encoded = try JSONEncoder().encode(journal)
        // A rename over the journal: a kill leaves the old record or the new one, never half of one.
        let temporary = journalPath + ".tmp"
        try TemporaryFiles.register(temporary)
        defer { TemporaryFiles.unregister(temporary) }
        guard FileManager.default.createFile(atPath: temporary, contents: encoded), rename(temporary, journalPath) == 0 else {
            unlink(temporary)
            throw RuntimeError.file(path: path, reason: "cannot write the checkpoint '\(journalPath)': \(String(cString: strerror(errno)))")
        }
    }

    /// Puts the `.npy` and its sidecars in place and removes the partial files. Returns the
    /// sidecar written (nil for a device or FIFO, which gets the rows alone).
    @discardableResult
    public func commit() throws -> String? {
        try writer.finish()
        let transaction = OutputTransaction(files: [writer.file])
        var sidecar: String?
        if let names {
            names.detach()
            guard let temporary = names.temporaryPath, let text = FileManager.default.contents(atPath: temporary) else {
                throw RuntimeError.file(path: path, reason: "cannot read back the file names of the run")
            }
            sidecar = OutputNaming.fileList(for: path)
            try transaction.stage(text, to: OutputNaming.fileList(for: path))
            if let shardRecord {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try transaction.stage(try encoder.encode(shardRecord) + Data("\n".utf8), to: ShardRecord.path(for: path))
            }
        }
        try transaction.commit()
        names?.cancel()
        removeJournal()
        return sidecar
    }

    /// Removes everything this run wrote: nothing of a failed run stays on disk.
    public func cancel() {
        writer.file.cancel()
        names?.cancel()
        removeJournal()
    }

    private func removeJournal() {
        guard let journalPath else { return }
        unlink(journalPath)
        TemporaryFiles.unregister(journalPath)
    }

    private static func size(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }
}
