/// Grouped convolution with as many output as input channels per group, 2 or more of each
/// (ResNeXt's 32 groups of 4…32, RegNet's groups of 8…24), on NHWC activations. Through im2col
/// each group is a GEMM only a few output channels wide after the input was copied once per tap
/// (14–15 GFLOP/s on Zen 4 for 4–16 channels per group); the C kernel
/// (CSIMDKernels/grouped_conv.h) reads the input in place and fills every SIMD lane, permuting
/// an input vector for groups narrower than a vector. It reads the filter in blocks of
/// channels, each [taps][in-group input channel][its channels] (`PackedConv2DWeights.tapMajor`).
import CSIMDKernels

enum GroupedConvolution {
    /// Whether the kernel handles `geometry`: NHWC, 1 < groups < channels, as many output as input
    /// channels per group, and a body for this CPU.
    static func isPreferred(for geometry: Conv2DGeometry) -> Bool {
        canRun(geometry) && KernelTable.current.grouped_conv != nil
    }

    /// The geometries the kernel computes, whatever the CPU.
    static func canRun(_ geometry: Conv2DGeometry) -> Bool {
        geometry.layout == .nhwc && geometry.groups > 1 && geometry.groups < geometry.inputChannels
            && geometry.inputChannels == geometry.outputChannels
    }

    /// Runs the whole batch, rows and channel blocks split across threads, on the filter as
    /// blocks of [taps][in-group input channel][block channels]. Returns false, having written nothing, when the
    /// kernel table has no grouped body for this CPU.
    static func run(input: UnsafePointer<Float>, weights filter: UnsafePointer<Float>, epilogue: KernelEpilogue,
                    output: UnsafeMutablePointer<Float>, geometry: Conv2DGeometry, context: KernelContext) -> Bool {
        guard let kernel = KernelTable.current.grouped_conv else { return false }
        let outputSize = geometry.output
        let description = keel_grouped_conv(
            input: input, weights: filter, output: output, batch: geometry.batch, channels: geometry.inputChannels,
            group_channels: geometry.inputChannelsPerGroup,
            input_height: geometry.input.height, input_width: geometry.input.width,
            output_height: outputSize.height, output_width: outputSize.width,
            kernel_height: geometry.kernel.height, kernel_width: geometry.kernel.width,
            stride_height: geometry.stride.height, stride_width: geometry.stride.width,
            dilation_height: geometry.dilation.height, dilation_width: geometry.dilation.width,
            pad_top: geometry.padding.top, pad_left: geometry.padding.left, epilogue: epilogue.description())
        var sizing = description
        let units = Int(keel_grouped_conv_work_count(&sizing))
        guard units > 0 else { return true }
        let work = geometry.outputElementCount * geometry.reductionLength
        let pipelines = min(context.threads, units, max(1, work / (16 * parallelGrain)))
        context.forEachBalancedChunk(units, chunks: pipelines) { range, _ in
            var call = description
            kernel(&call, range.lowerBound, range.count)
        }
        let remaining = epilogue.remainingActivation
        if remaining != .identity {
            applyResidual(nil, activation: remaining, to: output, count: geometry.outputElementCount, context: context)
        }
        return true
    }
}
