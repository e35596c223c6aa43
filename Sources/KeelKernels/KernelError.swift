/// Errors thrown by kernels. Kernels validate extents and buffer sizes once, before any hot loop,
/// so a caller bug surfaces as a descriptive error instead of a memory fault or a trap.
public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// An extent, attribute or shape that the kernel cannot work with.
    case invalidArgument(kernel: String, message: String)
    /// A buffer holds fewer elements than the extents require.
    case bufferTooSmall(kernel: String, buffer: String, required: Int, actual: Int)

    public var description: String {
        switch self {
        case let .invalidArgument(kernel, message):
            return "\(kernel): \(message)"
        case let .bufferTooSmall(kernel, buffer, required, actual):
            return "\(kernel): buffer '\(buffer)' holds \(actual) elements, \(required) required"
        }
    }
}

/// Throws `invalidArgument` unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ kernel: String, _ message: @autoclosure () -> String) throws {
    if !condition { throw KernelError.invalidArgument(kernel: kernel, message: message()) }
}

/// Throws `bufferTooSmall` unless a buffer of `actual` elements covers `required`.
@inline(__always)
func requireCapacity(_ actual: Int, _ required: Int, _ kernel: String, _ buffer: String) throws {
    if actual < required {
        throw KernelError.bufferTooSmall(kernel: kernel, buffer: buffer, required: required, actual: actual)
    }
}

/// Product of extents, throwing on negative extents or overflow (extents come from user models).
func elementCount(_ shape: [Int], _ kernel: String) throws -> Int {
    var total = 1
    for extent in shape {
        try require(extent >= 0, kernel, "negative extent in shape \(shape)")
        let (product, overflow) = total.multipliedReportingOverflow(by: extent)
        try require(!overflow, kernel, "shape \(shape) has too many elements")
        total = product
    }
    return total
}

/// Row-major strides of a contiguous tensor.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}
