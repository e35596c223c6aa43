import Foundation
import KeelIR

/// NumPy's .npy format, version 1.0–3.0, float32 little-endian C order only: the one layout
/// Keel computes in. Anything else is refused with the reason rather than converted silently.
public enum NpyFile {
    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    public static func read(path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError.npy(path: path, reason: "cannot read the file")
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String) throws -> Tensor {
        let bytes = [UInt8](data)
        func fail(_ reason: String) -> RuntimeError { .npy(path: path, reason: reason) }
        let (shape, payloadStart) = try parseHeader(bytes, path: path)
        let count = shape.reduce(1, *)
        let expectedBytes = count * 4
        guard bytes.count - payloadStart >= expectedBytes else {
            throw fail("shape \(Shape(known: shape)) needs \(formatCount(expectedBytes)) bytes of data but the file has \(formatCount(bytes.count - payloadStart))")
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[payloadStart..<(payloadStart + expectedBytes)]))
            }
        }
        #if _endian(big)
        values = values.map { Float(bitPattern: $0.bitPattern.byteSwapped) }
        #endif
        return try Tensor(shape: shape, values: values)
    }

    /// The shape and where the data starts, from the first bytes of a .npy (at least the whole
    /// header; `readHeader` reads just that much of a file).
    static func parseHeader(_ bytes: [UInt8], path: String) throws -> (shape: [Int], dataOffset: Int) {
        func fail(_ reason: String) -> RuntimeError { .npy(path: path, reason: reason) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("missing the \\x93NUMPY magic") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("unsupported format version \(major)")
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw fail("truncated header")
        }
        let descr = try field("descr", in: header, path: path)
        guard descr == "'<f4'" || descr == "'float32'" else {
            throw fail("dtype \(descr.replacingOccurrences(of: "'", with: "")) is not float32 little-endian ('<f4'); convert with x.astype('<f4')")
        }
        let fortran = try field("fortran_order", in: header, path: path)
        guard fortran == "False" else { throw fail("Fortran order is not supported; save with np.ascontiguousarray(x)") }
        let shape = try parseShape(try field("shape", in: header, path: path), path: path)
        return (shape, headerStart + headerLength)
    }

    /// The shape and data offset of a .npy file, reading only its header (for files too large to
    /// load, such as the shards `keel merge` joins).
    public static func readHeader(path: String) throws -> (shape: [Int], dataOffset: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw RuntimeError.npy(path: path, reason: "cannot read the file") }
        defer { try? handle.close() }
        var bytes = [UInt8]((try? handle.read(upToCount: 12)) ?? Data())
        if bytes.count == 12 {
            let (start, length) = bytes[6] == 1 ? (10, Int(bytes[8]) | Int(bytes[9]) << 8)
                : (12, (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) })
            guard length <= 1 << 20 else { throw RuntimeError.npy(path: path, reason: "header of \(length) bytes is too long") }
            bytes += [UInt8]((try? handle.read(upToCount: max(0, start + length - bytes.count))) ?? Data())
        }
        return try parseHeader(bytes, path: path)
    }

    public static func encode(_ tensor: Tensor) -> Data {
        var data = header(shape: tensor.shape)
        tensor.values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The version 1.0 header for a float32 C-order array. Padded with spaces so the data starts
    /// on a multiple of `alignment` bytes (64 per NEP 1; a streaming writer reserves more so the
    /// final header fits the space it left).
    public static func header(shape: [Int], alignment: Int = 64) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (alignment - unpadded % alignment) % alignment) + "\n"
        var data = Data(magic + [1, 0])
        let length = header.utf8.count
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    /// Writes through a temporary file and a rename, so a failure never leaves a partial file.
    public static func write(_ tensor: Tensor, to path: String) throws {
        try AtomicFile.write(encode(tensor), to: path)
    }

    private static func field(_ name: String, in header: String, path: String) throws -> String {
        guard let keyRange = header.range(of: "'\(name)':") else {
            throw RuntimeError.npy(path: path, reason: "header has no '\(name)'")
        }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { throw RuntimeError.npy(path: path, reason: "malformed shape") }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    private static func parseShape(_ text: String, path: String) throws -> [Int] {
        let inner = text.dropFirst().dropLast()
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let extent = Int(trimmed.replacingOccurrences(of: "L", with: "")), extent >= 0 else {
                throw RuntimeError.npy(path: path, reason: "malformed shape \(text)")
            }
            shape.append(extent)
        }
        guard Shape.checkedElementCount(shape) != nil else {
            throw RuntimeError.npy(path: path, reason: "shape \(text) is too large")
        }
        return shape
    }
}
