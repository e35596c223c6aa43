import KeelIR

/// Why an image could not be loaded. Prints as one line starting with the file's name, for the
/// person at the terminal who passed a directory of photos and needs to know which one is bad.
public struct ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case missing
        case unreadable(String)
        case empty
        case unknownFormat(String)
        case corrupt(ImageFormat, String)
        case unsupported(ImageFormat, String)
        case tooLarge(ImageFormat, width: Int, height: Int, limits: ImageLimits)
        case fileTooLarge(bytes: Int, limit: Int)
        case outOfMemory(width: Int, height: Int)
    }

    public var file: String
    public var reason: Reason

    public init(file: String, reason: Reason) {
        self.file = file
        self.reason = reason
    }

    public var description: String {
        "\(file): \(reasonText)"
    }

    private var reasonText: String {
        switch reason {
        case .missing:
            return "no such file"
        case .unreadable(let why):
            return "cannot read the file: \(why)"
        case .empty:
            return "the file is empty"
        case .unknownFormat(let what):
            return what
        case .corrupt(let format, let detail):
            return "not a valid \(format.rawValue) image: \(detail)"
        case .unsupported(let format, let detail):
            return "unsupported \(format.rawValue) image: \(detail)"
        case .tooLarge(let format, let width, let height, let limits):
            return "the \(format.rawValue) header declares \(width)×\(height) pixels, over the limit of "
                + "\(limits.maxSide) per side and \(formatCount(limits.maxPixels)) pixels in all"
        case .fileTooLarge(let bytes, let limit):
            return "the file is \(formatCount(bytes)) bytes, over the limit of \(formatCount(limit))"
        case .outOfMemory(let width, let height):
            return "not enough memory to decode \(width)×\(height) pixels"
        }
    }
}
