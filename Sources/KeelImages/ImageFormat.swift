/// The encodings Keel decodes, recognised by their leading bytes: a file's extension is only a
/// hint that users get wrong (a JPEG saved as .png, a text file named .png).
public enum ImageFormat: String, Equatable, Sendable {
    case png = "PNG"
    case jpeg = "JPEG"

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func detect<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
        if bytes.starts(with: pngSignature) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// Names what an unrecognised file seems to be, so the error says more than "unknown".
    static func describeUnknown<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let others: [(prefix: [UInt8], name: String)] = [
            (Array("GIF8".utf8), "a GIF image"), (Array("BM".utf8), "a BMP image"),
            ([0x49, 0x49, 0x2A, 0x00], "a TIFF image"), ([0x4D, 0x4D, 0x00, 0x2A], "a TIFF image"),
            ([0x93] + Array("NUMPY".utf8), "a NumPy .npy file"), (Array("PK".utf8), "a zip archive"),
        ]
        if let match = others.first(where: { bytes.starts(with: $0.prefix) }) {
            return "it is \(match.name); only PNG and JPEG are supported"
        }
        let head = Array(bytes.prefix(12))
        if head.count >= 12, head[0..<4].elementsEqual("RIFF".utf8), head[8..<12].elementsEqual("WEBP".utf8) {
            return "it is a WebP image; only PNG and JPEG are supported"
        }
        let start = Array(bytes.prefix(16))
        if start.allSatisfy({ (0x20..<0x7F).contains($0) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            let text = String(decoding: start, as: UTF8.self)
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
            return "not a PNG or JPEG image: it looks like text (starts \"\(text)\")"
        }
        let hex = start.prefix(8).map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        return "not a PNG or JPEG image (it starts with bytes \(hex.joined(separator: " ")))"
    }
}
