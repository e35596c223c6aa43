/// Depthwise convolution (groups = input channels = output channels, MobileNet/EfficientNet/
/// Xception's spatial filters). As im2col + GEMM it is one tiny product per channel; the C kernel
/// (CSIMDKernels/depthwise_conv.h) runs it directly, vectorised over channels (NHWC) or adjacent
/// output pixels (NCHW), with bias, residual and activation fused. Its NHWC work units are output
/// rows, cut into channel blocks when a call fits in L2 (so a 7×7 map at batch 1 still splits).
/// NCHW reads the filter as packed for im2col ([channels][taps]); NHWC loads a vector of channels
/// per tap, from the [taps][channels] copy prepared weights hold (`PackedConv2DWeights`).
import CSIMDKernels

public enum DepthwiseConvolution {
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

    /// Whether `apply` reads or writes bf16 activations for `geometry` on this CPU: one filter per
    /// channel (no multiplier), NHWC, the held-filter body's square 3×3 and 5×5 filters at equal
    /// strides of 1 or 2 (keel_depthwise_conv_runs_bf16), and AVX512_BF16.
    public static func runsBF16(_ geometry: Conv2DGeometry) -> Bool {
        guard KernelTable.current.depthwise_conv_bf16 != nil, canRun(geometry), replicatedInputCount(geometry) == 0,
              geometry.layout == .nhwc else { return false }
        var description = parameters(geometry, input: nil, weights: nil, output: nil,
                                     epilogue: KernelEpilogue(activation: .identity))
        return keel_depthwise_conv_runs_bf16(&description) != 0
    }

    /// Whether a bf16 output can follow `activation`: the kernel rounds after its fused epilogue;
    /// an activation it does not fuse would need an fp32 pass over the output.
    public static func storesBF16(after activation: UnaryOperation) -> Bool {
        KernelEpilogue.fusedActivation(activation) != nil
    }

    /// output = activation(depthwise(input) + bias + residual) with the input or the output (or both)
    /// held as bf16 values, two per float slot (`ActivationStorage`): a bf16 plan's activations
    /// between bf16 layers, so they move half the bytes. Sums, filter, bias and residual stay fp32;
    /// a bf16 input is widened exactly and a bf16 output rounded to nearest even once, after the
    /// activation. Throws where `runsBF16` is false, or for a bf16 output after an activation the
    /// kernel does not fuse.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: PackedConv2DWeights,
                             bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
                             activation: UnaryOperation, output: UnsafeMutableBufferPointer<Float>,
                             geometry: Conv2DGeometry, inputStorage: ActivationStorage, outputStorage: ActivationStorage,
                             context: KernelContext) throws {
        let name = "conv2d (depthwise, bf16 activations)"
        try geometry.validate()
        try weights.check(against: geometry)
        try require(runsBF16(geometry), name, "bf16 activations need AVX512_BF16 and an NHWC 3×3 or 5×5 depthwise layer "
                        + "at equal strides of 1 or 2, undilated")
        try require(outputStorage == .fp32 || storesBF16(after: activation), name,
                    "a bf16 output takes an activation the kernel fuses, not \(activation)")
        try requireCapacity(input.count, BF16Convolution.slots(geometry.inputElementCount, in: inputStorage), name, "input")
        try requireCapacity(output.count, BF16Convolution.slots(geometry.outputElementCount, in: outputStorage), name,
                            "output")
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        if let residual { try requireCapacity(residual.count, geometry.outputElementCount, name, "residual") }
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let done = weights.tapMajor?.withUnsafeBufferPointer { filter in
            filter.baseAddress.map {
                run(input: source, weights: $0, epilogue: KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress,
                                                                         activation: activation),
                    output: destination, geometry: geometry, scratch: UnsafeMutableBufferPointer(start: nil, count: 0),
                    context: context, storage: (inputStorage, outputStorage))
            } ?? false
        } ?? false
        try require(done, name, "the filter has no tap-major form")
    }

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
    /// `storage` other than fp32 (`apply`'s bf16 activations) runs the bf16 body, on `runsBF16`
    /// geometries only.
    static func run(input: UnsafePointer<Float>, weights filter: UnsafePointer<Float>, epilogue: KernelEpilogue,
                    output: UnsafeMutablePointer<Float>, geometry: Conv2DGeometry,
                    scratch: UnsafeMutableBufferPointer<Float>, context: KernelContext,
                    storage: (input: ActivationStorage, output: ActivationStorage) = (.fp32, .fp32)) -> Bool {
        let bf16 = storage.input == .bf16 || storage.output == .bf16
        guard let kernel = bf16 ? KernelTable.current.depthwise_conv_bf16 : KernelTable.current.depthwise_conv,
              !bf16 || runsBF16(geometry) else { return false }
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
        var description = parameters(geometry, input: input, weights: filter, output: output, epilogue: epilogue)
        description.bf16_input = storage.input == .bf16 ? 1 : 0
        description.bf16_output = storage.output == .bf16 ? 1 : 0
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
            channels_last: geometry.layout == .nhwc ? 1 : 0, epilogue: epilogue.description(), bf16_input: 0,
            bf16_output: 0)
    }
}
