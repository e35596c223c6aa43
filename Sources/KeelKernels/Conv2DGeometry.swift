/// The full description of one 2-D convolution, validated once up front. Kernels read derived
/// extents (output size, channels per group, GEMM K) from here instead of recomputing them.

public struct Conv2DGeometry: Sendable, Equatable {
    public var batch: Int
    public var input: Size2D
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernel: Size2D
    public var stride: Size2D
    public var dilation: Size2D
    public var padding: Padding2D
    public var groups: Int
    public var layout: ActivationLayout

    public init(batch: Int, input: Size2D, inputChannels: Int, outputChannels: Int, kernel: Size2D,
                stride: Size2D = .one, dilation: Size2D = .one, padding: Padding2D = .zero,
                groups: Int = 1, layout: ActivationLayout = .nhwc) {
        self.batch = batch
        self.input = input
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.padding = padding
        self.groups = groups
        self.layout = layout
    }

    /// Output height and width (valid only once `validate()` passed).
    public var output: Size2D {
        Size2D(slidingWindowOutputSize(input: input.height, kernel: kernel.height, stride: stride.height,
                                       dilation: dilation.height, padBegin: padding.top, padEnd: padding.bottom),
               slidingWindowOutputSize(input: input.width, kernel: kernel.width, stride: stride.width,
                                       dilation: dilation.width, padBegin: padding.left, padEnd: padding.right))
    }

    public var inputChannelsPerGroup: Int { inputChannels / max(groups, 1) }
    public var outputChannelsPerGroup: Int { outputChannels / max(groups, 1) }
    /// Length of one im2col row: kernel taps × input channels of a group (the GEMM K).
    var reductionLength: Int { kernel.height * kernel.width * inputChannelsPerGroup }
    var outputPixelsPerImage: Int { output.height * output.width }

    public var inputElementCount: Int { batch * input.height * input.width * inputChannels }
    public var outputElementCount: Int { batch * outputPixelsPerImage * outputChannels }
    /// After a fused 2×2 stride-2 max pool (floor mode).
    public var pooledOutputElementCount: Int { batch * (output.height / 2) * (output.width / 2) * outputChannels }

    /// Throws unless every extent is usable and the output is non-empty.
    public func validate() throws {
        let name = "conv2d"
        let extents = [batch, input.height, input.width, inputChannels, outputChannels, kernel.height, kernel.width,
                       stride.height, stride.width, dilation.height, dilation.width,
                       padding.top, padding.left, padding.bottom, padding.right, groups]
        try require(extents.allSatisfy { $0 <= Int(Int32.max) }, name, "extents beyond 2^31 are not supported")
        try require(batch >= 0 && inputChannels > 0 && outputChannels > 0, name,
                    "batch \(batch), channels \(inputChannels)->\(outputChannels) must be positive")
        try require(input.height > 0 && input.width > 0, name, "input size \(input) must be positive")
        try require(kernel.height > 0 && kernel.width > 0, name, "kernel size \(kernel) must be positive")
        try require(stride.height > 0 && stride.width > 0, name, "strides \(stride) must be positive")
        try require(dilation.height > 0 && dilation.width > 0, name, "dilations \(dilation) must be positive")
        try require(padding.top >= 0 && padding.left >= 0 && padding.bottom >= 0 && padding.right >= 0, name,
                    "pads \(padding) must not be negative")
        try require(groups > 0 && inputChannels % groups == 0 && outputChannels % groups == 0, name,
                    "groups \(groups) must divide channels \(inputChannels) and \(outputChannels)")
        try require(output.height > 0 && output.width > 0, name,
                    "kernel \(kernel) with dilation \(dilation) does not fit input \(input) with pads \(padding)")
        _ = try elementCount([batch, input.height, input.width, inputChannels], name)
        _ = try elementCount([batch, output.height, output.width, outputChannels], name)
        try requireBLASExtents(batch * outputPixelsPerImage, reductionLength, outputChannels, kernel: name)
    }

    /// A 1×1, stride-1, unpadded convolution is a plain GEMM over the activation itself.
    public var isPointwise: Bool {
        kernel == .one && stride == .one && padding == .zero
    }
}
