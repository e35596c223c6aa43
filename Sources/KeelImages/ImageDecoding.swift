import CImageShims
import Foundation

extension Image {
    /// Decodes a PNG or JPEG file, recognised by its content, into RGB exactly as Pillow's
    /// `Image.open(path).convert("RGB")` does (JPEG within ±1 per channel across libjpeg versions).
    public init(contentsOfFile path: String, limits: ImageLimits = .standard) throws {
        let data = try Image.readFile(path, limits: limits)
        try self.init(data: data, name: path, limits: limits)
    }

    /// Decodes PNG or JPEG bytes; `name` is what errors call the data (usually its path).
    public init(data: Data, name: String, limits: ImageLimits = .standard) throws {
        guard !data.isEmpty else { throw ImageError(file: name, reason: .empty) }
        guard let format = ImageFormat.detect(data) else {
            throw ImageError(file: name, reason: .unknownFormat(ImageFormat.describeUnknown(data)))
        }
        var decoded = KeelDecodedImage()
        let status = data.withUnsafeBytes { raw -> KeelImageStatus in
            let bytes = raw.bindMemory(to: UInt8.self)
            let side = UInt32(clamping: limits.maxSide)
            let pixels = UInt64(clamping: limits.maxPixels)
            switch format {
            case .png: return keel_decode_png(bytes.baseAddress, bytes.count, side, pixels, &decoded)
            case .jpeg: return keel_decode_jpeg(bytes.baseAddress, bytes.count, side, pixels, &decoded)
            }
        }
        defer { keel_image_release(&decoded) }
        let width = Int(decoded.width), height = Int(decoded.height)
        func fail(_ reason: ImageError.Reason) -> ImageError { ImageError(file: name, reason: reason) }
        switch status {
        case KEEL_IMAGE_OK:
            guard let base = decoded.pixels,
                  let image = Image(width: width, height: height,
                                    pixels: Array(UnsafeBufferPointer(start: base, count: width * height * 3))) else {
                throw fail(.corrupt(format, "the image has no pixels"))
            }
            self = image
        case KEEL_IMAGE_TOO_LARGE:
            throw fail(.tooLarge(format, width: width, height: height, limits: limits))
        case KEEL_IMAGE_UNSUPPORTED:
            throw fail(.unsupported(format, Image.message(of: &decoded)))
        case KEEL_IMAGE_OUT_OF_MEMORY:
            throw fail(.outOfMemory(width: width, height: height))
        default:
            throw fail(.corrupt(format, Image.message(of: &decoded)))
        }
    }

    private static func message(of decoded: inout KeelDecodedImage) -> String {
        let text = withUnsafeBytes(of: &decoded.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return text.isEmpty ? "the decoder gave no reason" : text
    }

    /// Reads the whole file after checking its size, so errors distinguish a missing path, a
    /// directory, a permission problem and an oversized file.
    private static func readFile(_ path: String, limits: ImageLimits) throws -> Data {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageError(file: path, reason: .missing)
        }
        guard !isDirectory.boolValue else { throw ImageError(file: path, reason: .unreadable("it is a directory")) }
        if let size = (try? manager.attributesOfItem(atPath: path))?[.size] as? Int, size > limits.maxFileBytes {
            throw ImageError(file: path, reason: .fileTooLarge(bytes: size, limit: limits.maxFileBytes))
        }
        guard manager.isReadableFile(atPath: path) else {
            throw ImageError(file: path, reason: .unreadable("permission denied"))
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ImageError(file: path, reason: .unreadable(error.localizedDescription))
        }
    }
}
