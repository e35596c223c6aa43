import KeelIR
import KeelKernels

// The one conversion from the IR's resolved geometry (batch symbolic, per-axis records) to the
// kernels' (a concrete batch, height × width pairs). Lowering and the prepare phase both use it.

extension Size2D {
    /// One field of both axes: `Size2D(spatial, \.kernel)` is kernel height × kernel width.
    init(_ spatial: SpatialGeometry, _ field: KeyPath<AxisGeometry, Int>) {
        self.init(spatial.height[keyPath: field], spatial.width[keyPath: field])
    }
}

extension Conv2DGeometry {
    /// A resolved conv2d at a concrete batch; throws on a padding the kernels cannot take.
    init(_ resolved: ConvolutionGeometry, batch: Int) throws {
        let spatial = resolved.spatial
        let input = Size2D(spatial, \.input), kernel = Size2D(spatial, \.kernel), padding = try Padding2D(spatial.pads)
        // A 1×1 filter over a 1×1 map (squeeze-excitation's layers) reads and writes the same floats
        // in either layout, so it runs as NHWC: [batch × inputs]·[inputs × outputs]. As NCHW its
        // filter was the left operand of a one-column product whose panels are 31 columns of padding
        // in 32: 27–37 µs per layer in EfficientNetV2-B0's last stage, OpenVINO 15.
        let pointOnPoint = input == Size2D(1, 1) && kernel == Size2D(1, 1) && padding == .zero
        self.init(batch: batch, input: input, inputChannels: resolved.inputChannels,
                  outputChannels: resolved.outputChannels, kernel: kernel,
                  stride: Size2D(spatial, \.stride), dilation: Size2D(spatial, \.dilation),
                  padding: padding, groups: resolved.groups,
                  layout: pointOnPoint ? .nhwc : resolved.layout.kernelLayout)
    }
}

extension Pool2DGeometry {
    /// A resolved pooling window at a concrete batch and channel count.
    init(_ resolved: PoolingGeometry, batch: Int, channels: Int) throws {
        let spatial = resolved.spatial
        self.init(batch: batch, channels: channels, input: Size2D(spatial, \.input), output: Size2D(spatial, \.output),
                  window: Size2D(spatial, \.kernel), stride: Size2D(spatial, \.stride), padding: try Padding2D(spatial.pads),
                  layout: resolved.layout.kernelLayout, dilation: Size2D(spatial, \.dilation))
    }
}

extension ConvTransposeGeometry {
    /// A resolved transposed convolution at a concrete batch.
    init(_ resolved: TransposedConvolutionGeometry, batch: Int) {
        self.init(batch: batch, inputChannels: resolved.inputChannels, outputChannels: resolved.outputChannels,
                  groups: resolved.groups, input: resolved.input, output: resolved.output, kernel: resolved.kernel,
                  strides: resolved.strides, dilations: resolved.dilations, padBegin: Array(resolved.pads[..<resolved.input.count]))
    }
}

extension Layout {
    var kernelLayout: ActivationLayout { self == .nhwc ? .nhwc : .nchw }
}
