/// Small value types for spatial geometry shared by convolution and pooling, so both take the
/// same padding and layout vocabulary and the "same"/ceil-mode arithmetic lives in one place.

/// How a rank-4 activation orders its axes.
public enum ActivationLayout: Sendable, Equatable {
    case nhwc
    case nchw
}

/// A height × width pair (kernel size, strides, dilations).
public struct Size2D: Sendable, Equatable {
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    public static let one = Size2D(1, 1)
}

/// Explicit spatial padding, in the IR's [top, left, bottom, right] order.
public struct Padding2D: Sendable, Equatable {
    public var top: Int
    public var left: Int
    public var bottom: Int
    public var right: Int

    public init(top: Int = 0, left: Int = 0, bottom: Int = 0, right: Int = 0) {
        self.top = top
        self.left = left
        self.bottom = bottom
        self.right = right
    }

    /// From `[top, left, bottom, right]`.
    public init(_ pads: [Int]) throws {
        try require(pads.count == 4, "padding", "expected [top, left, bottom, right], got \(pads)")
        self.init(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
    }

    public static let zero = Padding2D()

    /// TensorFlow/Keras "same" padding (ONNX SAME_UPPER): the odd extra pixel goes bottom/right.
    public static func same(input: Size2D, kernel: Size2D, stride: Size2D, dilation: Size2D = .one) -> Padding2D {
        func split(_ size: Int, _ kernel: Int, _ stride: Int, _ dilation: Int) -> (Int, Int) {
            let output = (size + stride - 1) / max(stride, 1)
            let total = max((output - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            return (total / 2, total - total / 2)
        }
        let (top, bottom) = split(input.height, kernel.height, stride.height, dilation.height)
        let (left, right) = split(input.width, kernel.width, stride.width, dilation.width)
        return Padding2D(top: top, left: left, bottom: bottom, right: right)
    }
}

/// Output extent of a sliding window along one axis. With `ceilMode` the last partial window is
/// kept, as long as it starts inside the input or the leading padding (ONNX/PyTorch rule).
public func slidingWindowOutputSize(input: Int, kernel: Int, stride: Int, dilation: Int = 1,
                                    padBegin: Int, padEnd: Int, ceilMode: Bool = false) -> Int {
    let span = (kernel - 1) * dilation + 1
    let room = input + padBegin + padEnd - span
    guard room >= 0, stride > 0 else { return 0 }
    var output = (ceilMode ? (room + stride - 1) / stride : room / stride) + 1
    if ceilMode && (output - 1) * stride >= input + padBegin {
        output -= 1
    }
    return output
}
