import Foundation

/// The `.files.txt` sidecar of `keel extract`: one image path per line, in row order. A path
/// that would not survive that (a newline, tab, ESC or other control character, a backslash, a
/// Unicode line separator) or that starts with a double quote is written as a JSON string
/// (`"a\nb.jpg"`), so every row stays one line and is read back with `json.loads` when it starts
/// with `"`. Plain paths are written as they are.
public enum FileListText {
    public static func encode(_ paths: [String]) -> String {
        paths.map { line(for: $0) + "\n" }.joined()
    }

    public static func decode(_ text: String, path: String) throws -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return try lines.enumerated().map { number, line in
            guard line.hasPrefix("\"") else { return line }
            guard let decoded = try? JSONDecoder().decode(String.self, from: Data(line.utf8)) else {
                throw ModelFileError(path: path, reason: "line \(number + 1) starts with '\"' but is not a JSON string")
            }
            return decoded
        }
    }

    public static func line(for path: String) -> String {
        guard path.hasPrefix("\"") || path.unicodeScalars.contains(where: needsEscape) else { return path }
        var text = "\""
        for scalar in path.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where needsEscape(scalar): text += String(format: "\\u%04x", scalar.value)
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\\" || scalar.value == 0x85
            || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}
