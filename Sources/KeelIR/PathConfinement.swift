#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a file named inside a model (an `include`, ONNX external data, a `labels:` file) may be
/// read from: the model's own folder tree, plus folders the user allowed (`--allow-path DIR`).
/// A model from elsewhere then cannot make Keel read, and print, any file it likes. Only regular
/// files pass: a FIFO or a device would block the load or never end.
public struct PathConfinement: Hashable, Sendable {
    /// Folders outside the model's tree that files may also come from.
    public var allowedFolders: [String]

    public init(allowing folders: [String] = []) { allowedFolders = folders }

    /// The real path of `reference` (relative to `folder`; an absolute path stays), checked by
    /// `check(_:inside:shownAs:)`.
    public func resolve(_ reference: String, inside folder: String) throws(PathError) -> String {
        let joined = reference.hasPrefix("/") ? reference : (folder.hasSuffix("/") ? folder : folder + "/") + reference
        return try check(joined, inside: folder, shownAs: reference)
    }

    /// The real path of `path`, checked: it exists, it is a regular file, and with symbolic links
    /// followed it lies inside `folder` or an allowed folder. Errors name it as `reference`.
    public func check(_ path: String, inside folder: String, shownAs reference: String? = nil) throws(PathError) -> String {
        let shown = reference ?? path
        let outside = PathError(reference: shown, kind: .outside,
                                reason: "lies outside the model's folder \(Self.realPath(folder) ?? folder) (pass --allow-path DIR to allow a folder)")
        guard !path.contains("\0"), let resolved = Self.realPath(path) else {
            // A missing file named by a path that climbs out of the tree is an escape all the same.
            let absolute = { (path: String) in Self.lexicallyNormalized(path.hasPrefix("/") ? path : Self.currentFolder() + "/" + path) }
            let lexicalRoots = ([folder] + allowedFolders).map(absolute)
            guard lexicalRoots.contains(where: { Self.isInside(absolute(path), $0) }) else { throw outside }
            throw PathError(reference: shown, kind: .missing, reason: "does not exist (looked for \(path))")
        }
        let roots = ([folder] + allowedFolders).compactMap(Self.realPath)
        guard roots.contains(where: { Self.isInside(resolved, $0) }) else { throw outside }
        var status = stat()
        guard stat(resolved, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw PathError(reference: shown, kind: .notRegularFile, reason: "is not a regular file")
        }
        return resolved
    }

    /// The folder a model file lives in, the root of the tree its references may use.
    public static func folder(of modelPath: String) -> String {
        guard let slash = modelPath.lastIndex(of: "/") else { return "." }
        let prefix = String(modelPath[..<slash])
        return prefix.isEmpty ? "/" : prefix
    }

    /// `path` with `.`, empty components and `dir/..` removed (no symbolic links followed).
    static func lexicallyNormalized(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/") where component != "." {
            if component == ".." { _ = components.popLast() } else { components.append(component) }
        }
        return "/" + components.joined(separator: "/")
    }

    static func currentFolder() -> String {
        guard let folder = getcwd(nil, 0) else { return "/" }
        defer { free(folder) }
        return String(cString: folder)
    }

    static func isInside(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }

    /// The canonical absolute path, or nil when it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// A file reference from a model that may not be read, and why.
public struct PathError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable { case missing, outside, notRegularFile }
    public var reference: String
    public var kind: Kind
    public var reason: String
    public init(reference: String, kind: Kind, reason: String) {
        self.reference = reference
        self.kind = kind
        self.reason = reason
    }
    public var description: String { "'\(reference.escapedForTerminal)' \(reason)" }
}
