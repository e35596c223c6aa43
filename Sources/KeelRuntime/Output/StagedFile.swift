import Foundation

/// One output file being written. For a regular file the bytes go to a hidden temporary file in
/// the target's folder (`.name.PID.tmp`, removed on failure and on interrupt) that `commit`
/// renames over the target, so the file appears whole or not at all. For a character device or
/// FIFO the bytes are held in an unnamed temporary file and written to it on `commit`, in one go:
/// the device is never replaced. Write errors (ENOSPC, EIO) name the output.
public final class StagedFile {
    public let target: OutputTarget
    /// The hidden file in the target's folder; nil for a device or FIFO.
    public let temporaryPath: String?
    private var descriptor: Int32
    private var isOpen = true

    public var path: String { target.path }

    /// Starts a new output for `path`. `partialName` names the temporary file (instead of
    /// `.name.PID.tmp`) so a killed run can be found again; `resumeAt` keeps that file's first
    /// bytes and appends after them.
    public init(path: String, partialName: String? = nil, resumeAt length: Int? = nil) throws {
        target = try OutputTarget.resolve(path)
        if target.isStream {
            guard partialName == nil else {
                throw RuntimeError.file(path: path, reason: "cannot resume into a device or FIFO; write to a regular file")
            }
            var template = Array((NSTemporaryDirectory() + "/keel-output-XXXXXX").utf8CString)
            descriptor = mkstemp(&template)
            guard descriptor >= 0 else {
                throw RuntimeError.file(path: path, reason: "cannot write: no temporary space (\(String(cString: strerror(errno))))")
            }
            unlink(template)
            temporaryPath = nil
            return
        }
        let name = partialName ?? ".\(URL(fileURLWithPath: target.resolvedPath).lastPathComponent).\(getpid()).tmp"
        let temporary = target.folder + "/" + name
        try TemporaryFiles.register(temporary)
        temporaryPath = temporary
        let flags = length == nil ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR
        descriptor = Glibc.open(temporary, flags | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            TemporaryFiles.unregister(temporary)
            throw RuntimeError.file(path: path, reason: "cannot write: \(reason)")
        }
        if let length {
            guard ftruncate(descriptor, off_t(length)) == 0, lseek(descriptor, 0, SEEK_END) == off_t(length) else {
                let reason = String(cString: strerror(errno))
                cancel()
                throw RuntimeError.file(path: path, reason: "cannot continue the partial file: \(reason)")
            }
        }
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let written = Glibc.write(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw failure()
            }
            offset += written
        }
    }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Overwrites bytes already written (a header whose contents are known only at the end).
    public func write(_ data: Data, at offset: Int) throws {
        let written = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == data.count else { throw failure() }
    }

    /// Forces the bytes written so far to the disk (a checkpoint that must survive a crash).
    public func synchronize() throws {
        guard fdatasync(descriptor) == 0 else { throw failure() }
    }

    /// Puts the file in place (rename, or the bytes copied to the device). Call through
    /// `OutputTransaction` to put several files in place together.
    public func commit() throws {
        try OutputTransaction(files: [self]).commit()
    }

    /// The rename or the copy; the caller holds `TemporaryFiles.committing`.
    func place() throws {
        guard isOpen else { return }
        if let temporaryPath {
            var existing = stat()
            if stat(target.resolvedPath, &existing) == 0 { fchmod(descriptor, existing.st_mode & 0o7777) }
            isOpen = false
            guard close(descriptor) == 0 else { throw failure(removing: temporaryPath) }
            guard rename(temporaryPath, target.resolvedPath) == 0 else { throw failure(removing: temporaryPath) }
            TemporaryFiles.unregister(temporaryPath)
        } else {
            defer {
                close(descriptor)
                isOpen = false
            }
            let device = Glibc.open(target.resolvedPath, O_WRONLY | O_CLOEXEC)
            guard device >= 0 else { throw failure() }
            defer { close(device) }
            guard lseek(descriptor, 0, SEEK_SET) == 0 else { throw failure() }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw failure() }
                if count == 0 { break }
                var offset = 0
                while offset < count {
                    let written = buffer.withUnsafeBytes { Glibc.write(device, $0.baseAddress! + offset, count - offset) }
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { throw failure() }
                    offset += written
                }
            }
        }
    }

    /// Removes the temporary file: nothing of a failed run stays on disk.
    public func cancel() {
        if isOpen {
            close(descriptor)
            isOpen = false
        }
        if let temporaryPath {
            unlink(temporaryPath)
            TemporaryFiles.unregister(temporaryPath)
        }
    }

    /// Keeps the temporary file for a later run (a checkpoint) but stops writing to it.
    public func detach() {
        if isOpen {
            close(descriptor)
            isOpen = false
        }
    }

    private func failure(removing temporary: String? = nil) -> RuntimeError {
        let reason = String(cString: strerror(errno))
        if let temporary {
            unlink(temporary)
            TemporaryFiles.unregister(temporary)
        }
        return .file(path: path, reason: "cannot write: \(reason)")
    }
}
