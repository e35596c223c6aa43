/// 2-D convolution entry point. It picks an algorithm per geometry (pointwise GEMM, direct for few
/// input channels, Winograd for 3×3 stride-1 layers, im2col otherwise), sizes the caller's scratch
/// for that algorithm, and runs GEMMs through OpenBLAS with the bias/activation epilogue fused per
/// output block.

/// Ways to compute a convolution.
public enum Conv2DAlgorithm: Sendable, Equatable {
    /// 1×1, stride 1, no padding: one GEMM straight over the activation, no scratch.
    case pointwise
    /// im2col over bounded pixel tiles, then a GEMM per tile and group.
    case im2colGEMM
    /// Winograd F(4×4, 3×3): 3×3, stride 1, no dilation, one group.
    case winograd
    /// Direct convolution in SIMD registers, for few input channels (one group); see
    /// `DirectConvolution`. Runs as im2colGEMM when no SIMD level is in use.
    case direct
}

public enum Conv2D {
    /// The algorithm `apply` uses when none is requested.
    /// Winograd needs enough channels on both sides for its transforms to cost less than the
    /// multiplies they save (a 3-channel first layer does not use it), and enough tiles over the
    /// batch: with few tiles its GEMMs only stream filters 4× the size of the plain ones, which
    /// costs as much time as im2col saves and 4× the memory (VGG16's 14×14 layers at batch 1).
    public static func defaultAlgorithm(for geometry: Conv2DGeometry) -> Conv2DAlgorithm {
        if geometry.isPointwise { return .pointwise }
        if DirectConvolution.isPreferred(for: geometry) { return .direct }
        if Winograd.supports(geometry) && geometry.inputChannels >= winogradMinimumChannels
            && geometry.outputChannels >= winogradMinimumChannels
            && Winograd.tileCount(geometry) >= winogradMinimumTiles {
            return .winograd
        }
        return .im2colGEMM
    }

    static let winogradMinimumChannels = 16
    static let winogradMinimumTiles = 32

    /// Floats of scratch `apply` needs for `geometry` with `algorithm` (default: `defaultAlgorithm`).
    /// Bounded by the im2col tile budget (a few MB) whatever the image size. Winograd and direct use
    /// as many threads as `threads` scratch slices allow (they still run with less).
    public static func scratchSize(for geometry: Conv2DGeometry, algorithm: Conv2DAlgorithm? = nil,
                                   threads: Int = 1) -> Int {
        switch algorithm ?? defaultAlgorithm(for: geometry) {
        case .pointwise:
            return 0
        case .im2colGEMM:
            return im2colScratchSize(for: geometry)
        case .winograd:
            return Winograd.scratchSize(for: geometry, threads: threads)
        case .direct:
            return DirectConvolution.scratchSize(for: geometry, threads: threads,
                                                 im2colScratch: im2colScratchSize(for: geometry))
        }
    }

    private static func im2colScratchSize(for geometry: Conv2DGeometry) -> Int {
        let pixels = geometry.layout == .nhwc
            ? geometry.batch * geometry.outputPixelsPerImage : geometry.outputPixelsPerImage
        let reduction = geometry.reductionLength
        return Im2Col.tilePixels(reduction: reduction, pixels: pixels) * reduction
    }

    /// output = activation(conv(input, weights) + bias), activations in `geometry.layout`.
    /// `bias` holds `outputChannels` values; `scratch` at least `scratchSize(for:algorithm:)` floats.
    /// The Winograd algorithm transforms `weights` on every call here; a model transforms them once
    /// and calls the `WinogradWeights` form.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: PackedConv2DWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, algorithm: Conv2DAlgorithm? = nil,
                             context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try geometry.validate()
        try weights.check(against: geometry)
        try requireCapacity(input.count, geometry.inputElementCount, name, "input")
        try requireCapacity(output.count, geometry.outputElementCount, name, "output")
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        let chosen = algorithm ?? defaultAlgorithm(for: geometry)
        try require(chosen != .pointwise || geometry.isPointwise, name,
                    "the pointwise algorithm needs a 1x1 kernel, stride 1 and no padding")
        try require(chosen != .direct || geometry.groups == 1, name, "the direct algorithm needs one group")
        if chosen == .winograd {
            return try apply(input: input, weights: WinogradWeights(weights), bias: bias, activation: activation,
                             output: output, geometry: geometry, scratch: scratch, context: context)
        }
        try requireCapacity(scratch.count, scratchSize(for: geometry, algorithm: chosen), name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        weights.storage.withUnsafeBufferPointer { packed in
            guard let packedBase = packed.baseAddress else { return }
            let run = ConvolutionRun(input: source, packed: packedBase, bias: bias?.baseAddress,
                                     activation: activation, output: destination, geometry: geometry,
                                     scratch: scratch.baseAddress, context: context)
            switch (chosen, geometry.layout) {
            case (.pointwise, .nhwc): run.pointwiseNHWC()
            case (.pointwise, .nchw): run.pointwiseNCHW()
            case (.im2colGEMM, .nhwc): run.im2colNHWC()
            case (.im2colGEMM, .nchw): run.im2colNCHW()
            case (.direct, _):
                let done = DirectConvolution.run(input: source, weights: packedBase, bias: bias?.baseAddress,
                                                 activation: activation, output: destination, geometry: geometry,
                                                 scratch: scratch, context: context)
                if !done { geometry.layout == .nhwc ? run.im2colNHWC() : run.im2colNCHW() }
            case (.winograd, _): break
            }
        }
    }
}

extension Conv2D {
    /// Winograd F(4×4, 3×3) with filters already in the Winograd domain; `scratch` at least
    /// `scratchSize(for: geometry, algorithm: .winograd)` floats. With `maxPooled`, the activated
    /// output is 2×2 stride-2 max-pooled (floor mode) as each tile is written, so `output` holds
    /// [batch, height/2, width/2, outputChannels]; NHWC only.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: WinogradWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, maxPooled: Bool = false,
                             context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try geometry.validate()
        try require(Winograd.supports(geometry), name,
                    "the Winograd algorithm needs a 3x3 kernel, stride 1, no dilation and one group")
        try require(!maxPooled || geometry.layout == .nhwc, name, "a fused max pool needs NHWC activations")
        try weights.check(against: geometry)
        try requireCapacity(input.count, geometry.inputElementCount, name, "input")
        try requireCapacity(output.count, maxPooled ? geometry.pooledOutputElementCount : geometry.outputElementCount,
                            name, "output")
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        try requireCapacity(scratch.count, Winograd.scratchSize(for: geometry), name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let workspace = scratch.baseAddress else { return }
        weights.storage.withUnsafeBufferPointer { filters in
            guard let filterBase = filters.baseAddress else { return }
            WinogradRun(input: source, weights: filterBase, bias: bias?.baseAddress, activation: activation,
                        output: destination, geometry: geometry, pooled: maxPooled, scratch: workspace,
                        scratchCount: scratch.count, context: context).run()
        }
    }
}

/// One validated convolution call; the methods are the per-algorithm, per-layout GEMM loops.
private struct ConvolutionRun {
    let input: UnsafePointer<Float>
    let packed: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let activation: UnaryOperation
    let output: UnsafeMutablePointer<Float>
    let geometry: Conv2DGeometry
    let scratch: UnsafeMutablePointer<Float>?
    let context: KernelContext

    var reduction: Int { geometry.reductionLength }
    var outputPerGroup: Int { geometry.outputChannelsPerGroup }
    var pixelsPerImage: Int { geometry.outputPixelsPerImage }

    func groupWeights(_ group: Int) -> UnsafePointer<Float> {
        packed + group * reduction * outputPerGroup
    }

    func groupBias(_ group: Int) -> UnsafePointer<Float>? {
        bias.map { $0 + group * outputPerGroup }
    }

    /// NHWC rows are pixels and columns channels: output[pixels, group's channels] = x × W.
    func pointwiseNHWC() {
        let pixels = geometry.batch * pixelsPerImage
        let inputPerGroup = geometry.inputChannelsPerGroup
        for group in 0..<geometry.groups {
            let block = OutputBlock(base: output + group * outputPerGroup, rows: pixels, columns: outputPerGroup,
                                    rowStride: geometry.outputChannels)
            sgemm(transposeA: false, transposeB: false, m: pixels, n: outputPerGroup, k: inputPerGroup,
                  a: input + group * inputPerGroup, lda: geometry.inputChannels, b: groupWeights(group),
                  ldb: outputPerGroup, c: block.base, ldc: block.rowStride, context: context)
            applyEpilogue(block, bias: groupBias(group), direction: .perColumn, activation: activation, context: context)
        }
    }

    /// NCHW rows are channels and columns pixels: output[group's channels, pixels] = Wᵀ × x.
    func pointwiseNCHW() {
        let inputPerGroup = geometry.inputChannelsPerGroup
        for image in 0..<geometry.batch {
            for group in 0..<geometry.groups {
                let source = input + (image * geometry.inputChannels + group * inputPerGroup) * pixelsPerImage
                let block = OutputBlock(base: output + (image * geometry.outputChannels + group * outputPerGroup) * pixelsPerImage,
                                        rows: outputPerGroup, columns: pixelsPerImage, rowStride: pixelsPerImage)
                sgemm(transposeA: true, transposeB: false, m: outputPerGroup, n: pixelsPerImage, k: inputPerGroup,
                      a: groupWeights(group), lda: outputPerGroup, b: source, ldb: pixelsPerImage,
                      c: block.base, ldc: block.rowStride, context: context)
                applyEpilogue(block, bias: groupBias(group), direction: .perRow, activation: activation, context: context)
            }
        }
    }

    /// NHWC tiles run over pixels of the whole batch, so small late layers still make one tall GEMM.
    func im2colNHWC() {
        guard let columns = scratch else { return }
        let pixels = geometry.batch * pixelsPerImage
        let tile = Im2Col.tilePixels(reduction: reduction, pixels: pixels)
        for tileStart in stride(from: 0, to: pixels, by: tile) {
            let count = min(tile, pixels - tileStart)
            for group in 0..<geometry.groups {
                Im2Col.fillNHWC(input: input, geometry: geometry, group: group, pixelStart: tileStart,
                                pixelCount: count, columns: columns, context: context)
                let block = OutputBlock(base: output + tileStart * geometry.outputChannels + group * outputPerGroup,
                                        rows: count, columns: outputPerGroup, rowStride: geometry.outputChannels)
                sgemm(transposeA: false, transposeB: false, m: count, n: outputPerGroup, k: reduction,
                      a: columns, lda: reduction, b: groupWeights(group), ldb: outputPerGroup,
                      c: block.base, ldc: block.rowStride, context: context)
                applyEpilogue(block, bias: groupBias(group), direction: .perColumn, activation: activation, context: context)
            }
        }
    }

    /// NCHW tiles run over the pixels of one image (channel planes are per image).
    func im2colNCHW() {
        guard let columns = scratch else { return }
        let tile = Im2Col.tilePixels(reduction: reduction, pixels: pixelsPerImage)
        for image in 0..<geometry.batch {
            for tileStart in stride(from: 0, to: pixelsPerImage, by: tile) {
                let count = min(tile, pixelsPerImage - tileStart)
                for group in 0..<geometry.groups {
                    Im2Col.fillNCHW(input: input, geometry: geometry, image: image, group: group,
                                    pixelStart: tileStart, pixelCount: count, columns: columns, context: context)
                    let channelStart = image * geometry.outputChannels + group * outputPerGroup
                    let block = OutputBlock(base: output + channelStart * pixelsPerImage + tileStart,
                                            rows: outputPerGroup, columns: count, rowStride: pixelsPerImage)
                    sgemm(transposeA: true, transposeB: false, m: outputPerGroup, n: count, k: reduction,
                          a: groupWeights(group), lda: outputPerGroup, b: columns, ldb: count,
                          c: block.base, ldc: block.rowStride, context: context)
                    applyEpilogue(block, bias: groupBias(group), direction: .perRow, activation: activation, context: context)
                }
            }
        }
    }
}
