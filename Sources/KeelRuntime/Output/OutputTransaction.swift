import Foundation

/// The outputs of one command, put in place together: every file is written to its temporary
/// first, and only when all have been written are they renamed into place (devices and FIFOs
/// first, then files in the order staged, so sidecars staged last appear last). A failure
/// before that leaves no file; an interrupt waits for the renames to finish.
public final class OutputTransaction {
    private var files: [StagedFile]

    public init(files: [StagedFile] = []) { self.files = files }

    /// Writes `data` for `path` now (to its temporary); it appears at `commit`. On failure every
    /// staged file is removed.
    public func stage(_ data: Data, to path: String) throws {
        do {
            let file = try StagedFile(path: path)
            files.append(file)
            try file.write(data)
        } catch {
            cancel()
            throw error
        }
    }

    public func add(_ file: StagedFile) { files.append(file) }

    public func commit() throws {
        do {
            try TemporaryFiles.committing {
                for file in files where file.target.isStream { try file.place() }
                for file in files where !file.target.isStream { try file.place() }
            }
        } catch {
            cancel()
            throw error
        }
        files = []
    }

    public func cancel() {
        for file in files { file.cancel() }
        files = []
    }
}

/// One output file written whole or not at all.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let transaction = OutputTransaction()
        try transaction.stage(data, to: path)
        try transaction.commit()
    }
}
