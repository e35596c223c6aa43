/// Direct convolution for layers with few input channels (an image network's RGB first layer).
/// There the im2col GEMM is only taps × channels deep (27 for 3×3 RGB), too shallow for OpenBLAS
/// to amortise its packing, and the separate bias/activation pass rereads the large output. The C
/// kernel (CSIMDKernels/conv_direct.c) keeps blocks of outputs in registers over all taps and
/// stores each value once, finished. It reads the im2col packing of the filter as is, so a model's
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
        var description = parameters(geometry, input: nil, weights: nil, bias: nil,
                                     activation: KEEL_DIRECT_CONV_IDENTITY, output: nil)
        let perThread = Int(keel_direct_conv_scratch_count(&description))
        return max(max(1, threads) * perThread, im2colScratch)
    }

    /// Runs the kernel over the whole batch, rows split across threads (each with its own slice of
    /// `scratch`). Returns false, having written nothing, when no SIMD level is in use.
    static func run(input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                    activation: UnaryOperation, output: UnsafeMutablePointer<Float>, geometry: Conv2DGeometry,
                    scratch: UnsafeMutableBufferPointer<Float>, context: KernelContext) -> Bool {
        guard let kernel = KernelTable.current.direct_conv_rows, let workspace = scratch.baseAddress else { return false }
        let fused: keel_direct_conv_activation = activation == .relu ? KEEL_DIRECT_CONV_RELU : KEEL_DIRECT_CONV_IDENTITY
        let description = parameters(geometry, input: input, weights: weights, bias: bias, activation: fused,
                                     output: output)
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
        if activation != .identity && activation != .relu {
            // The kernel fused the bias only; the rest of the activation is one pass here.
            let columns = geometry.layout == .nhwc
                ? geometry.output.width * geometry.outputChannels : geometry.outputPixelsPerImage
            let block = OutputBlock(base: output, rows: geometry.outputElementCount / columns, columns: columns,
                                    rowStride: columns)
            applyEpilogue(block, bias: nil, direction: .perColumn, activation: activation, context: context)
        }
        return true
    }

    private static func parameters(_ geometry: Conv2DGeometry, input: UnsafePointer<Float>?,
                                   weights: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                   activation: keel_direct_conv_activation,
                                   output: UnsafeMutablePointer<Float>?) -> keel_direct_conv {
        let outputSize = geometry.output
        return keel_direct_conv(
            input: input, weights: weights, bias: bias, output: output, batch: geometry.batch,
            input_height: geometry.input.height, input_width: geometry.input.width,
            input_channels: geometry.inputChannels,
            output_height: outputSize.height, output_width: outputSize.width, output_channels: geometry.outputChannels,
            kernel_height: geometry.kernel.height, kernel_width: geometry.kernel.width,
            stride_height: geometry.stride.height, stride_width: geometry.stride.width,
            dilation_height: geometry.dilation.height, dilation_width: geometry.dilation.width,
            pad_top: geometry.padding.top, pad_left: geometry.padding.left,
            channels_last: geometry.layout == .nhwc ? 1 : 0, activation: activation)
    }
}
