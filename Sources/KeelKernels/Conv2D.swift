/// 2-D convolution entry point. It picks an algorithm per geometry (depthwise direct for one filter
/// per channel, pointwise GEMM, direct for few input channels, Winograd for 3×3 stride-1 layers,
/// im2col otherwise), sizes the caller's scratch for that algorithm, and runs GEMMs on Keel's panel
/// GEMM with bias, residual and activation fused into each output block's store.

import CSIMDKernels

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
    /// One filter per channel (groups = channels), direct; see `DepthwiseConvolution`. Runs as
    /// im2colGEMM when no SIMD level is in use.
    case depthwise
}

public enum Conv2D {
    /// The algorithm `apply` uses when none is requested.
    /// Winograd needs enough channels on both sides for its transforms to cost less than the
    /// multiplies they save (a 3-channel first layer does not use it), and enough tiles over the
    /// batch: with few tiles its GEMMs only stream filters 4× the size of the plain ones, which
    /// costs as much time as im2col saves and 4× the memory (VGG16's 14×14 layers at batch 1).
    public static func defaultAlgorithm(for geometry: Conv2DGeometry) -> Conv2DAlgorithm {
        if DepthwiseConvolution.isPreferred(for: geometry) { return .depthwise }
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
        case .depthwise:
            return DepthwiseConvolution.scratchSize(for: geometry, threads: threads,
                                                    im2colScratch: im2colScratchSize(for: geometry))
        }
    }

    private static func im2colScratchSize(for geometry: Conv2DGeometry) -> Int {
        let pixels = geometry.layout == .nhwc
            ? geometry.batch * geometry.outputPixelsPerImage : geometry.outputPixelsPerImage
        let reduction = geometry.reductionLength
        return Im2Col.tilePixels(reduction: reduction, pixels: pixels) * reduction
    }

    /// output = activation(conv(input, weights) + bias + residual), activations in `geometry.layout`.
    /// `bias` holds `outputChannels` values, `residual` the output's extents (a shortcut added
    /// before the activation); `scratch` at least `scratchSize(for:algorithm:)` floats.
    /// The Winograd algorithm transforms `weights` on every call here; a model transforms them once
    /// and calls the `WinogradWeights` form.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: PackedConv2DWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, algorithm: Conv2DAlgorithm? = nil,
                             context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try geometry.validate()
        try weights.check(against: geometry)
        try requireCapacity(input.count, geometry.inputElementCount, name, "input")
        try requireCapacity(output.count, geometry.outputElementCount, name, "output")
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        if let residual { try requireCapacity(residual.count, geometry.outputElementCount, name, "residual") }
        let chosen = algorithm ?? defaultAlgorithm(for: geometry)
        try require(chosen != .pointwise || geometry.isPointwise, name,
                    "the pointwise algorithm needs a 1x1 kernel, stride 1 and no padding")
        try require(chosen != .direct || geometry.groups == 1, name, "the direct algorithm needs one group")
        try require(chosen != .depthwise || (geometry.groups == geometry.inputChannels
                                             && geometry.groups == geometry.outputChannels),
                    name, "the depthwise algorithm needs groups = input channels = output channels")
        if chosen == .winograd {
            return try apply(input: input, weights: WinogradWeights(weights), bias: bias, residual: residual,
                             activation: activation, output: output, geometry: geometry, scratch: scratch,
                             context: context)
        }
        try requireCapacity(scratch.count, scratchSize(for: geometry, algorithm: chosen), name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        weights.storage.withUnsafeBufferPointer { packed in
            guard let packedBase = packed.baseAddress else { return }
            let epilogue = KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress, activation: activation)
            let run = ConvolutionRun(input: source, packed: packedBase, epilogue: epilogue, output: destination,
                                     geometry: geometry, scratch: scratch.baseAddress, context: context)
            switch (chosen, geometry.layout) {
            case (.pointwise, .nhwc): run.pointwiseNHWC()
            case (.pointwise, .nchw): run.pointwiseNCHW()
            case (.im2colGEMM, .nhwc): run.im2colNHWC()
            case (.im2colGEMM, .nchw): run.im2colNCHW()
            case (.direct, _):
                // The direct kernel fuses bias and ReLU; a residual and other activations follow.
                let fused: UnaryOperation = residual == nil ? activation : .identity
                let done = DirectConvolution.run(input: source, weights: packedBase, bias: bias?.baseAddress,
                                                 activation: fused, output: destination, geometry: geometry,
                                                 scratch: scratch, context: context)
                if !done { geometry.layout == .nhwc ? run.im2colNHWC() : run.im2colNCHW() }
                if done && residual != nil {
                    applyResidual(residual?.baseAddress, activation: activation, to: destination,
                                  count: geometry.outputElementCount, context: context)
                }
            case (.depthwise, _):
                let done = DepthwiseConvolution.run(input: source, weights: packedBase, epilogue: epilogue,
                                                    output: destination, geometry: geometry, scratch: scratch,
                                                    context: context)
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
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, maxPooled: Bool = false,
                             context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try geometry.validate()
        try require(Winograd.supports(geometry), name,
                    "the Winograd algorithm needs a 3x3 kernel, stride 1, no dilation and one group")
        try require(!maxPooled || geometry.layout == .nhwc, name, "a fused max pool needs NHWC activations")
        try require(!maxPooled || residual == nil, name, "a fused max pool cannot follow a residual add")
        if let residual { try requireCapacity(residual.count, geometry.outputElementCount, name, "residual") }
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
            // The tile transforms fuse bias and activation; a residual goes in between, in one pass.
            WinogradRun(input: source, weights: filterBase, bias: bias?.baseAddress,
                        activation: residual == nil ? activation : .identity,
                        output: destination, geometry: geometry, pooled: maxPooled, scratch: workspace,
                        scratchCount: scratch.count, context: context).run()
        }
        if let residual {
            applyResidual(residual.baseAddress, activation: activation, to: destination,
                          count: geometry.outputElementCount, context: context)
        }
    }
}

/// One validated convolution call; the methods are the per-algorithm, per-layout GEMM loops.
/// Each product runs on Keel's panel GEMM with the epilogue fused (`gemm`), or through OpenBLAS
/// and a separate epilogue pass when no SIMD level is in use.
private struct ConvolutionRun {
    let input: UnsafePointer<Float>
    let packed: UnsafePointer<Float>
    let epilogue: KernelEpilogue
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

    /// One output block's product and epilogue. Channels are the block's columns (`channelsAreRows`
    /// false: NHWC, left = activations, right = the [K][outputs] filter) or its rows (NCHW,
    /// left = the filter read as Wᵀ, right = activations [K][pixels]). `firstChannel` and
    /// `offset` locate the block's bias and residual.
    func gemm(m: Int, n: Int, k: Int, left: UnsafePointer<Float>, leftRowStep: Int, right: UnsafePointer<Float>,
              rightDepthStep: Int, block: OutputBlock, channelsAreRows: Bool, firstChannel: Int, offset: Int) {
        var fused = epilogue
        fused.bias = epilogue.bias.map { $0 + firstChannel }
        fused.residual = epilogue.residual.map { $0 + offset }
        let leftView = channelsAreRows ? keel_gemm_left(base: left, row_step: 1, depth_step: leftRowStep)
                                       : keel_gemm_left(base: left, row_step: leftRowStep, depth_step: 1)
        let rightView = keel_gemm_right(base: right, depth_step: rightDepthStep, panel_step: PanelGEMM.panel, padded: 0)
        if PanelGEMM.multiply(m: m, n: n, k: k, left: leftView, right: rightView, c: block.base, ldc: block.rowStride,
                              epilogue: fused, biasPerRow: channelsAreRows, residualStride: block.rowStride,
                              context: context) { return }
        sgemm(transposeA: channelsAreRows, transposeB: false, m: m, n: n, k: k, a: left, lda: leftRowStep,
              b: right, ldb: rightDepthStep, c: block.base, ldc: block.rowStride, context: context)
        if let residual = fused.residual {
            for row in 0..<block.rows {
                let line = block.base + row * block.rowStride, shortcut = residual + row * block.rowStride
                for column in 0..<block.columns { line[column] += shortcut[column] }
            }
        }
        applyEpilogue(block, bias: fused.bias, direction: channelsAreRows ? .perRow : .perColumn,
                      activation: epilogue.activation, context: context)
    }

    /// NHWC rows are pixels and columns channels: output[pixels, group's channels] = x × W.
    func pointwiseNHWC() {
        let pixels = geometry.batch * pixelsPerImage
        let inputPerGroup = geometry.inputChannelsPerGroup
        for group in 0..<geometry.groups {
            let channel = group * outputPerGroup
            let block = OutputBlock(base: output + channel, rows: pixels, columns: outputPerGroup,
                                    rowStride: geometry.outputChannels)
            gemm(m: pixels, n: outputPerGroup, k: inputPerGroup, left: input + group * inputPerGroup,
                 leftRowStep: geometry.inputChannels, right: groupWeights(group), rightDepthStep: outputPerGroup,
                 block: block, channelsAreRows: false, firstChannel: channel, offset: channel)
        }
    }

    /// NCHW rows are channels and columns pixels: output[group's channels, pixels] = Wᵀ × x.
    func pointwiseNCHW() {
        let inputPerGroup = geometry.inputChannelsPerGroup
        for image in 0..<geometry.batch {
            for group in 0..<geometry.groups {
                let source = input + (image * geometry.inputChannels + group * inputPerGroup) * pixelsPerImage
                let offset = (image * geometry.outputChannels + group * outputPerGroup) * pixelsPerImage
                let block = OutputBlock(base: output + offset, rows: outputPerGroup, columns: pixelsPerImage,
                                        rowStride: pixelsPerImage)
                gemm(m: outputPerGroup, n: pixelsPerImage, k: inputPerGroup, left: groupWeights(group),
                     leftRowStep: outputPerGroup, right: source, rightDepthStep: pixelsPerImage, block: block,
                     channelsAreRows: true, firstChannel: group * outputPerGroup, offset: offset)
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
                let offset = tileStart * geometry.outputChannels + group * outputPerGroup
                let block = OutputBlock(base: output + offset, rows: count, columns: outputPerGroup,
                                        rowStride: geometry.outputChannels)
                gemm(m: count, n: outputPerGroup, k: reduction, left: columns, leftRowStep: reduction,
                     right: groupWeights(group), rightDepthStep: outputPerGroup, block: block, channelsAreRows: false,
                     firstChannel: group * outputPerGroup, offset: offset)
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
                    let offset = (image * geometry.outputChannels + group * outputPerGroup) * pixelsPerImage + tileStart
                    let block = OutputBlock(base: output + offset, rows: outputPerGroup, columns: count,
                                            rowStride: pixelsPerImage)
                    gemm(m: outputPerGroup, n: count, k: reduction, left: groupWeights(group),
                         leftRowStep: outputPerGroup, right: columns, rightDepthStep: count, block: block,
                         channelsAreRows: true, firstChannel: group * outputPerGroup, offset: offset)
                }
            }
        }
    }
}
