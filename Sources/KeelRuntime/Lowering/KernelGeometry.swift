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
        self.init(batch: batch, input: Size2D(spatial, \.input), inputChannels: resolved.inputChannels,
                  outputChannels: resolved.outputChannels, kernel: Size2D(spatial, \.kernel),
                  stride: Size2D(spatial, \.stride), dilation: Size2D(spatial, \.dilation),
                  padding: try Padding2D(spatial.pads), groups: resolved.groups, layout: resolved.layout.kernelLayout)
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
