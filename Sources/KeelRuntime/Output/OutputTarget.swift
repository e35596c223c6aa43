import Foundation

/// What an output path names once symlinks are followed: a regular file (new or existing),
/// written through a temporary file in its own folder and a rename, or a character device or
/// FIFO (`/dev/null`, a pipe to another program), which is written straight and never replaced.
/// Anything else (a folder, a block device, a socket) is refused before any work is done.
public struct OutputTarget: Sendable {
    public enum Kind: Sendable { case regularFile, stream }

    /// The path as the user gave it (what messages name).
    public let path: String
    /// Where the bytes go: `path` with every symlink followed.
    public let resolvedPath: String
    public let kind: Kind

    public var isStream: Bool { kind == .stream }

    /// The folder the file lives in (after symlinks), where its temporary file is made.
    public var folder: String { OutputTarget.folder(of: resolvedPath) }

    public static func resolve(_ path: String) throws -> OutputTarget {
        func fail(_ reason: String) -> RuntimeError { .file(path: path, reason: "cannot write: \(reason)") }
        guard !path.isEmpty else { throw fail("the output path is empty") }
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0 else {
                guard errno == ENOENT else { throw fail(String(cString: strerror(errno))) }
                try checkFolder(of: current, for: path)
                return OutputTarget(path: path, resolvedPath: current, kind: .regularFile)
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(current, &buffer, buffer.count - 1)
                guard length >= 0 else { throw fail(String(cString: strerror(errno))) }
                let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                current = target.hasPrefix("/") ? target : folder(of: current) + "/" + target
            case S_IFREG:
                try checkFolder(of: current, for: path)
                return OutputTarget(path: path, resolvedPath: current, kind: .regularFile)
            case S_IFCHR, S_IFIFO:
                return OutputTarget(path: path, resolvedPath: current, kind: .stream)
            case S_IFDIR:
                throw fail("it is a folder")
            case S_IFBLK:
                throw fail("it is a block device; keel writes regular files, character devices and FIFOs only")
            default:
                throw fail("it is a socket or another special file; keel writes regular files, character devices and FIFOs only")
            }
        }
        throw fail("too many levels of symbolic links")
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func checkFolder(of resolved: String, for path: String) throws {
        let directory = folder(of: resolved)
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw RuntimeError.file(path: path, reason: "cannot write: folder '\(directory)' does not exist")
        }
        guard access(directory, W_OK) == 0 else {
            throw RuntimeError.file(path: path, reason: "cannot write: folder '\(directory)' is not writable")
        }
    }
}
