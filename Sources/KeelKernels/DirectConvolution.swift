/// Direct convolution for layers with few input channels (an image network's RGB first layer).
/// There the im2col GEMM is only taps × channels deep (27 for 3×3 RGB), too shallow for OpenBLAS
/// to amortise its packing, and a separate bias/activation pass rereads the large output. The C
/// kernel (CSIMDKernels/direct_conv.h) keeps blocks of outputs in registers over all taps and
/// stores each value once, finished (bias, residual, activation). It reads the im2col packing of the filter as is, so a model's
/// prepared `PackedConv2DWeights` (and .keelc files) serve both algorithms.
import CSIMDKernels

enum DirectConvolution {
    /// Above this many input channels the GEMM is deep enough for im2col (or Winograd) to win.
    static let maximumPreferredInputChannels = 4
    /// Nor is a large filter's GEMM shallow: ViT's 16×16 patch embedding is 768 deep (16·16·3),
    /// and the direct kernel ran it at 9 GFLOP/s where im2col's GEMM runs near the dense layers'
    /// rate. Stems up to 7×7 RGB (147 deep) stay direct.
    static let maximumPreferredReduction = 256

    /// Whether `Conv2D.defaultAlgorithm` should pick the direct kernel: few input channels, a
    /// small filter, one group, not a plain GEMM, and a SIMD level to run it (otherwise im2col is
    /// the faster path).
    static func isPreferred(for geometry: Conv2DGeometry) -> Bool {
        geometry.groups == 1 && geometry.inputChannels <= maximumPreferredInputChannels
            && geometry.reductionLength <= maximumPreferredReduction
            && !geometry.isPointwise && KernelTable.current.direct_conv_rows != nil
    }

    /// Scratch for `threads` concurrent row ranges, and at least what im2col needs: without a
    /// SIMD level at run time the call falls back to im2col in the same scratch.
    static func scratchSize(for geometry: Conv2DGeometry, threads: Int, im2colScratch: Int) -> Int {
        var description = parameters(geometry, input: nil, weights: nil,
                                     epilogue: KernelEpilogue(activation: .identity), output: nil)
        let perThread = Int(keel_direct_conv_scratch_count(&description))
        return max(max(1, threads) * perThread, im2colScratch)
    }

    /// Runs the kernel over the whole batch, rows split across threads (each with its own slice of
    /// `scratch`), the epilogue fused (an activation the C code lacks follows as one pass). Returns
    /// false, having written nothing, when no SIMD level is in use.
    static func run(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, epilogue: KernelEpilogue,
                    output: UnsafeMutablePointer<Float>, geometry: Conv2DGeometry, inputLayout: ActivationLayout,
                    scratch: UnsafeMutableBufferPointer<Float>, context: KernelContext) -> Bool {
        guard let kernel = KernelTable.current.direct_conv_rows, let workspace = scratch.baseAddress else { return false }
        var description = parameters(geometry, input: input, weights: weights, epilogue: epilogue, output: output)
        description.input_channels_last = inputLayout == .nhwc ? 1 : 0
        var sizing = description
        let perThread = max(1, Int(keel_direct_conv_scratch_count(&sizing)))
        let rows = geometry.batch * geometry.output.height
        // A row costs outputs × taps multiply-adds; tiny layers stay on one thread.
        let rowWork = Double(geometry.output.width) * Double(geometry.outputChannels) * Double(geometry.reductionLength)
        let worthwhile = Int(min(Double(rows), Double(rows) * rowWork / Double(16 * parallelGrain)))
        let pipelines = min(context.threads, scratch.count / perThread, rows, max(1, worthwhile))
        guard pipelines >= 1 else { return false }
        context.forEachBalancedChunk(rows, chunks: pipelines) { range, index in
            var call = description
            kernel(&call, range.lowerBound, range.count, workspace + index * perThread)
        }
        let remaining = epilogue.remainingActivation
        if remaining != .identity {
            applyResidual(nil, activation: remaining, to: output, count: geometry.outputElementCount, context: context)
        }
        return true
    }

    private static func parameters(_ geometry: Conv2DGeometry, input: UnsafePointer<Float>?,
                                   weights: UnsafePointer<Float>?, epilogue: KernelEpilogue,
                                   output: UnsafeMutablePointer<Float>?) -> keel_direct_conv {
        let outputSize = geometry.output
        return keel_direct_conv(
            input: input, weights: weights, output: output, batch: geometry.batch,
            input_height: geometry.input.height, input_width: geometry.input.width,
            input_channels: geometry.inputChannels,
            output_height: outputSize.height, output_width: outputSize.width, output_channels: geometry.outputChannels,
            kernel_height: geometry.kernel.height, kernel_width: geometry.kernel.width,
            stride_height: geometry.stride.height, stride_width: geometry.stride.width,
            dilation_height: geometry.dilation.height, dilation_width: geometry.dilation.width,
            pad_top: geometry.padding.top, pad_left: geometry.padding.left,
            channels_last: geometry.layout == .nhwc ? 1 : 0, input_channels_last: geometry.layout == .nhwc ? 1 : 0,
            epilogue: epilogue.description())
    }
}
