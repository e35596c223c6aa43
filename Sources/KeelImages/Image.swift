/// A decoded picture as 8-bit RGB: the one form every preprocessing preset starts from, whatever
/// the file held (grey, palette, alpha, 16-bit), so presets never branch on the source format.
public struct Image: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// Interleaved RGB, 3 bytes per pixel, rows top to bottom.
    public let pixels: [UInt8]

    /// Nil when `pixels` does not hold exactly `width * height * 3` bytes.
    public init?(width: Int, height: Int, pixels: [UInt8]) {
        guard width > 0, height > 0,
              !width.multipliedReportingOverflow(by: height).overflow,
              pixels.count == width * height * 3 else { return nil }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The red, green and blue bytes at column `x`, row `y`; nil outside the image.
    public subscript(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8)? {
        guard (0..<width).contains(x), (0..<height).contains(y) else { return nil }
        let offset = (y * width + x) * 3
        return (pixels[offset], pixels[offset + 1], pixels[offset + 2])
    }
}

/// How large an image may be before decoding it is refused. Checked on the header alone, so a
/// file that declares 30000×30000 pixels is refused in microseconds without allocating 2.7 GB.
public struct ImageLimits: Equatable, Sendable {
    public var maxSide: Int
    public var maxPixels: Int
    public var maxFileBytes: Int

    public init(maxSide: Int = 16_384, maxPixels: Int = 100_000_000, maxFileBytes: Int = 512 << 20) {
        self.maxSide = maxSide
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
    }

    public static let standard = ImageLimits()
}
