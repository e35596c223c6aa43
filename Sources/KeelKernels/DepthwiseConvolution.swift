/// Depthwise convolution (groups = input channels = output channels, MobileNet/EfficientNet/
/// Xception's spatial filters). As im2col + GEMM it is one tiny product per channel; the C kernel
/// (CSIMDKernels/depthwise_conv.h) runs it directly, vectorised over channels (NHWC) or adjacent
/// output pixels (NCHW), with bias, residual and activation fused. Its NHWC work units are output
/// rows, cut into channel blocks when a call fits in L2 (so a 7×7 map at batch 1 still splits).
/// NCHW reads the filter as packed for im2col ([channels][taps]); NHWC loads a vector of channels
/// per tap, from the [taps][channels] copy prepared weights hold (`PackedConv2DWeights`).
import CSIMDKernels

enum DepthwiseConvolution {
    /// Whether the kernel handles `geometry`, and has a body for this CPU.
    static func isPreferred(for geometry: Conv2DGeometry) -> Bool {
        canRun(geometry) && KernelTable.current.depthwise_conv != nil
    }

    /// One filter per input channel: each feeding one output channel, or, NHWC, several (a
    /// channel multiplier, as FastViT's downsampling layers and Keras's depth_multiplier have).
    static func canRun(_ geometry: Conv2DGeometry) -> Bool {
        geometry.groups > 1 && geometry.groups == geometry.inputChannels
            && (geometry.outputChannels == geometry.groups
                || (geometry.layout == .nhwc && geometry.outputChannels % geometry.groups == 0))
    }

    /// A channel multiplier m runs as a plain depthwise layer over the m·C output channels, on the
    /// input with each channel repeated m times: output channel c·m + j reads input channel c, the
    /// grouping order of ONNX and Keras. As im2col it was one product of 1 × taps × m per channel
    /// (FastViT-T8's three 7×7 downsampling layers took 13 of its 28 ms, ONNX Runtime's whole model 11).
    private static func replicatedGeometry(_ geometry: Conv2DGeometry) -> Conv2DGeometry {
        var replicated = geometry
        replicated.inputChannels = geometry.outputChannels
        replicated.groups = geometry.outputChannels
        return replicated
    }

    /// Floats of the input with its channels repeated (none without a multiplier).
    private static func replicatedInputCount(_ geometry: Conv2DGeometry) -> Int {
        geometry.outputChannels == geometry.inputChannels ? 0 : replicatedGeometry(geometry).inputElementCount
    }

    private static func taps(_ geometry: Conv2DGeometry) -> Int { geometry.kernel.height * geometry.kernel.width }

    /// Scratch for `threads` concurrent calls (NCHW: staged planes), and at least what im2col
    /// needs, which runs in its place without a SIMD body.
    static func scratchSize(for geometry: Conv2DGeometry, threads: Int, im2colScratch: Int) -> Int {
        var description = parameters(geometry, input: nil, weights: nil, output: nil,
                                     epilogue: KernelEpilogue(activation: .identity))
        let own = geometry.layout == .nhwc ? 0 : max(1, threads) * Int(keel_depthwise_conv_scratch_count(&description))
        return max(replicatedInputCount(geometry) + own, im2colScratch)
    }

    /// Runs the whole batch, work split across threads, on the filter as `PackedConv2DWeights`
    /// holds it for `geometry.layout` ([channels][taps] for NCHW, [taps][channels] for NHWC).
    /// Returns false, having written nothing, when the kernel table has no depthwise body for this
    /// CPU.
    static func run(input: UnsafePointer<Float>, weights filter: UnsafePointer<Float>, epilogue: KernelEpilogue,
                    output: UnsafeMutablePointer<Float>, geometry: Conv2DGeometry,
                    scratch: UnsafeMutableBufferPointer<Float>, context: KernelContext) -> Bool {
        guard let kernel = KernelTable.current.depthwise_conv else { return false }
        let replicatedCount = replicatedInputCount(geometry)
        if replicatedCount > 0 {
            guard let base = scratch.baseAddress, scratch.count >= replicatedCount else { return false }
            let (channels, multiplier) = (geometry.inputChannels, geometry.outputChannels / geometry.inputChannels)
            let pixels = geometry.batch * geometry.input.height * geometry.input.width
            context.forEachChunk(pixels, minimumChunk: max(1, parallelGrain / max(1, geometry.outputChannels))) { range in
                for pixel in range {
                    let from = input + pixel * channels, to = base + pixel * channels * multiplier
                    for channel in 0..<channels {
                        for copy in 0..<multiplier { to[channel * multiplier + copy] = from[channel] }
                    }
                }
            }
            return run(input: base, weights: filter, epilogue: epilogue, output: output, geometry: replicatedGeometry(geometry),
                       scratch: UnsafeMutableBufferPointer(rebasing: scratch[replicatedCount...]), context: context)
        }
        let tapCount = taps(geometry)
        let description = parameters(geometry, input: input, weights: filter, output: output, epilogue: epilogue)
        var sizing = description
        let units = Int(keel_depthwise_conv_work_count(&sizing))
        let perThread = Int(keel_depthwise_conv_scratch_count(&sizing))
        let unitWork = max(1, geometry.outputElementCount * tapCount / max(units, 1))
        let pipelines = min(context.threads, units, max(1, units * unitWork / parallelGrain),
                            perThread == 0 ? Int.max : scratch.count / perThread)
        guard pipelines >= 1 else { return false }
        context.forEachChunk(pipelines, minimumChunk: 1) { indices in
            for index in indices {
                var call = description
                let first = units * index / pipelines, end = units * (index + 1) / pipelines
                kernel(&call, first, end - first, scratch.baseAddress.map { $0 + index * perThread })
            }
        }
        let remaining = epilogue.remainingActivation
        if remaining != .identity {
            applyResidual(nil, activation: remaining, to: output, count: geometry.outputElementCount, context: context)
        }
        return true
    }

    private static func parameters(_ geometry: Conv2DGeometry, input: UnsafePointer<Float>?,
                                   weights: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?,
                                   epilogue: KernelEpilogue) -> keel_depthwise_conv {
        let outputSize = geometry.output
        return keel_depthwise_conv(
            input: input, weights: weights, output: output, batch: geometry.batch, channels: geometry.inputChannels,
            input_height: geometry.input.height, input_width: geometry.input.width,
            output_height: outputSize.height, output_width: outputSize.width,
            kernel_height: geometry.kernel.height, kernel_width: geometry.kernel.width,
            stride_height: geometry.stride.height, stride_width: geometry.stride.width,
            dilation_height: geometry.dilation.height, dilation_width: geometry.dilation.width,
            pad_top: geometry.padding.top, pad_left: geometry.padding.left,
            channels_last: geometry.layout == .nhwc ? 1 : 0, epilogue: epilogue.description())
    }
}
