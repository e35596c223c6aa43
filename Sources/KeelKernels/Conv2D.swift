/// 2-D convolution entry point. It picks an algorithm per geometry (depthwise direct for one filter
/// per channel, grouped direct for a few channels per group, pointwise GEMM, direct for few input channels, Winograd for 3×3 stride-1 layers,
/// im2col otherwise), sizes the caller's scratch for that algorithm, and runs GEMMs on Keel's panel
/// GEMM with bias, residual and activation fused into each output block's store.

import CSIMDKernels

/// Ways to compute a convolution.
public enum Conv2DAlgorithm: Sendable, Equatable {
    /// 1×1, stride 1, no padding: one GEMM straight over the activation, no scratch.
    case pointwise
    /// im2col over bounded pixel tiles, then a GEMM per tile and group.
    case im2colGEMM
    /// Winograd F(4×4, 3×3) or F(2×2, 3×3): 3×3, stride 1, no dilation, one group.
    case winograd(WinogradTile)
    /// Direct convolution in SIMD registers, for few input channels (one group); see
    /// `DirectConvolution`. Runs as im2colGEMM when no SIMD level is in use.
    case direct
    /// One filter per input channel (groups = input channels; NHWC also with a channel
    /// multiplier), direct; see `DepthwiseConvolution`. Runs as im2colGEMM when no SIMD level is in use.
    case depthwise
    /// 1 < groups < channels with as many outputs as inputs per group, NHWC, direct; see
    /// `GroupedConvolution`. Runs as im2colGEMM when no SIMD level is in use.
    case grouped
    /// Winograd F(4, k) along each axis the filter spans: 1×k or k×1 (k = 3, 5, 7) or 5×5, stride
    /// 1, no dilation, one group, NHWC; see `LineWinograd`.
    case lineWinograd

    /// The tile of a Winograd algorithm, nil for the others.
    public var winogradTile: WinogradTile? {
        if case .winograd(let tile) = self { return tile }
        return nil
    }
}

public enum Conv2D {
    /// The algorithm `apply` uses when none is requested (Winograd where a tile pays, `Winograd.tile`).
    public static func defaultAlgorithm(for geometry: Conv2DGeometry) -> Conv2DAlgorithm {
        if DepthwiseConvolution.isPreferred(for: geometry) { return .depthwise }
        if GroupedConvolution.isPreferred(for: geometry) { return .grouped }
        if geometry.isPointwise { return .pointwise }
        if DirectConvolution.isPreferred(for: geometry) { return .direct }
        if Winograd.supports(geometry), let tile = Winograd.tile(for: geometry) { return .winograd(tile) }
        if LineWinograd.pays(geometry) { return .lineWinograd }
        return .im2colGEMM
    }

    /// Floats of scratch `apply` needs for `geometry` with `algorithm` (default: `defaultAlgorithm`).
    /// Bounded by the im2col tile budget (a few MB) whatever the image size. Winograd and direct use
    /// as many threads as `threads` scratch slices allow (they still run with less). An input in
    /// another layout than the output (`inputLayout`, direct only) adds room for the transposed
    /// input the im2col fallback needs.
    public static func scratchSize(for geometry: Conv2DGeometry, algorithm: Conv2DAlgorithm? = nil,
                                   threads: Int = 1, inputLayout: ActivationLayout? = nil) -> Int {
        let transposedInput = (inputLayout ?? geometry.layout) == geometry.layout ? 0 : geometry.inputElementCount
        switch algorithm ?? defaultAlgorithm(for: geometry) {
        case .pointwise:
            return 0
        case .im2colGEMM, .grouped:
            return im2colScratchSize(for: geometry)
        case .winograd(let tile):
            return Winograd.scratchSize(for: geometry, tile, threads: threads)
        case .lineWinograd:
            return LineWinograd.scratchSize(for: geometry, threads: threads)
        case .direct:
            return DirectConvolution.scratchSize(for: geometry, threads: threads,
                                                 im2colScratch: transposedInput + im2colScratchSize(for: geometry))
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
    /// The Winograd and GEMM algorithms repack `weights` on every call here; a model prepares
    /// them once and calls the `WinogradWeights` or `PanelConv2DWeights` form. The direct
    /// algorithm also reads an input in `inputLayout` (default: the output's), the NCHW image of
    /// a PyTorch graph that runs NHWC, so no separate transpose pass is needed;
    /// `scratchSize(for:algorithm:threads:inputLayout:)` then sizes `scratch`.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: PackedConv2DWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, algorithm: Conv2DAlgorithm? = nil,
                             inputLayout: ActivationLayout? = nil, context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try validate(input: input, bias: bias, residual: residual, output: output, geometry: geometry)
        try weights.check(against: geometry)
        let chosen = algorithm ?? defaultAlgorithm(for: geometry)
        let sourceLayout = inputLayout ?? geometry.layout
        try require(sourceLayout == geometry.layout || chosen == .direct, name,
                    "only the direct algorithm reads an input in another layout than its output's")
        try require(chosen != .direct || geometry.groups == 1, name, "the direct algorithm needs one group")
        try require(chosen != .depthwise || DepthwiseConvolution.canRun(geometry), name,
                    "the depthwise algorithm needs groups = input channels, and as many output channels or (NHWC) a multiple")
        try require(chosen != .grouped || GroupedConvolution.canRun(geometry), name,
                    "the grouped algorithm needs NHWC, 1 < groups < channels and as many outputs as inputs per group")
        func viaPanels(_ algorithm: Conv2DAlgorithm) throws {
            try apply(input: input, weights: PanelConv2DWeights(weights, layout: geometry.layout, context: context),
                      bias: bias, residual: residual, activation: activation, output: output, geometry: geometry,
                      scratch: scratch, algorithm: algorithm, context: context)
        }
        switch chosen {
        case .winograd(let tile):
            return try apply(input: input, weights: WinogradWeights(weights, tile: tile), bias: bias, residual: residual,
                             activation: activation, output: output, geometry: geometry, scratch: scratch,
                             context: context)
        case .lineWinograd:
            return try apply(input: input, weights: LineWinogradWeights(weights, context: context), bias: bias,
                             residual: residual, activation: activation, output: output, geometry: geometry,
                             scratch: scratch, context: context)
        case .pointwise, .im2colGEMM:
            return try viaPanels(chosen)
        case .direct, .depthwise, .grouped:
            break
        }
        try requireCapacity(scratch.count, scratchSize(for: geometry, algorithm: chosen, threads: 1, inputLayout: sourceLayout),
                            name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let done = weights.storage.withUnsafeBufferPointer { packed -> Bool in
            guard let packedBase = packed.baseAddress else { return true }
            let epilogue = KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress, activation: activation)
            if chosen == .grouped {
                return weights.tapMajor?.withUnsafeBufferPointer { filter in
                    filter.baseAddress.map {
                        GroupedConvolution.run(input: source, weights: $0, epilogue: epilogue, output: destination,
                                               geometry: geometry, context: context)
                    } ?? false
                } ?? false
            }
            if chosen == .depthwise {
                let run = { (filter: UnsafePointer<Float>) in
                    DepthwiseConvolution.run(input: source, weights: filter, epilogue: epilogue, output: destination,
                                             geometry: geometry, scratch: scratch, context: context)
                }
                guard geometry.layout == .nhwc else { return run(packedBase) }
                return weights.tapMajor?.withUnsafeBufferPointer { $0.baseAddress.map(run) ?? false } ?? false
            }
            return DirectConvolution.run(input: source, weights: packedBase, epilogue: epilogue, output: destination,
                                         geometry: geometry, inputLayout: sourceLayout, scratch: scratch,
                                         context: context)
        }
        // Without a SIMD level the direct, depthwise and grouped kernels do not run: im2col does,
        // on the input transposed to the output's layout first if it is not in it.
        guard !done else { return }
        guard sourceLayout != geometry.layout else { return try viaPanels(.im2colGEMM) }
        let count = geometry.inputElementCount
        let transposed = UnsafeMutableBufferPointer(rebasing: scratch[..<count])
        let (batch, height, width, channels) = (geometry.batch, geometry.input.height, geometry.input.width,
                                                geometry.inputChannels)
        try DataMovement.transpose(input: input, shape: sourceLayout == .nchw ? [batch, channels, height, width]
                                                                              : [batch, height, width, channels],
                                   permutation: sourceLayout == .nchw ? [0, 2, 3, 1] : [0, 3, 1, 2],
                                   output: transposed, context: context)
        try apply(input: UnsafeBufferPointer(transposed), weights: weights, bias: bias, residual: residual,
                  activation: activation, output: output, geometry: geometry,
                  scratch: UnsafeMutableBufferPointer(rebasing: scratch[count...]), algorithm: .im2colGEMM,
                  context: context)
    }

    /// The pointwise or im2col algorithm (default: pointwise for a plain 1×1 GEMM, else im2col) on
    /// weights packed once into the panel GEMM's layout; `scratch` at least
    /// `scratchSize(for:algorithm:)` floats for that algorithm. `inputScales` ([batch][input
    /// channels], pointwise NHWC on one group only) multiplies each image's input channels first, a
    /// squeeze-excitation gate: the filter is scaled instead (`scratch` then needs
    /// `weights.inputScaleScratchSize` more floats), so the gated input is never written.
    /// `outputPixelStride` (NHWC, no residual or gate) puts consecutive output pixels that many
    /// floats apart, a slice of a wider buffer (a concatenation's), and leaves the floats between untouched.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: PanelConv2DWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, algorithm: Conv2DAlgorithm? = nil,
                             prologue: GEMMPrologue? = nil, inputScales: UnsafeBufferPointer<Float>? = nil,
                             outputPixelStride: Int? = nil, context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try validate(input: input, bias: bias, residual: residual, output: output, geometry: geometry,
                     outputPixelStride: outputPixelStride)
        try require(outputPixelStride == nil || inputScales == nil, name, "a strided output cannot take input channel scales")
        try weights.check(against: geometry)
        let chosen = algorithm ?? (geometry.isPointwise ? .pointwise : .im2colGEMM)
        if let prologue {
            try require(chosen == .pointwise && geometry.layout == .nhwc && geometry.groups == 1 && PanelGEMM.hasPrologue,
                        name, "an input prologue needs the pointwise NHWC algorithm on one group and a SIMD GEMM")
            try prologue.check(channels: geometry.inputChannels, rows: geometry.batch * geometry.input.height
                               * geometry.input.width, input: input)
        }
        let filterScratch = scratchSize(for: geometry, algorithm: chosen)
        if let inputScales {
            try require(chosen == .pointwise && geometry.layout == .nhwc && geometry.groups == 1 && prologue == nil,
                        name, "input channel scales need the pointwise NHWC algorithm on one group, without a prologue")
            try requireCapacity(inputScales.count, geometry.batch * geometry.inputChannels, name, "input channel scales")
            try requireCapacity(scratch.count, filterScratch + weights.inputScaleScratchSize, name, "scratch")
        }
        try require(chosen == .pointwise || chosen == .im2colGEMM, name,
                    "panel-packed weights run the pointwise or im2col algorithm, not \(chosen)")
        try require(chosen != .pointwise || geometry.isPointwise, name,
                    "the pointwise algorithm needs a 1x1 kernel, stride 1 and no padding")
        try requireCapacity(scratch.count, filterScratch, name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        weights.filter.storage.withUnsafeBufferPointer { packed in
            guard let filterBase = packed.baseAddress else { return }
            let epilogue = KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress, activation: activation)
            var run = ConvolutionRun(input: source, filter: weights.filter, filterBase: filterBase, epilogue: epilogue,
                                     output: destination, geometry: geometry, scratch: scratch.baseAddress,
                                     context: context)
            run.outputPixelStride = outputPixelStride
            switch (chosen, geometry.layout) {
            case (.pointwise, .nhwc) where inputScales != nil:
                guard let scales = inputScales?.baseAddress, let copy = scratch.baseAddress else { return }
                if Conv2D.gateScalesFilter(geometry) {
                    run.pointwiseNHWC(inputScales: scales, filterCopy: copy + filterScratch)
                } else {
                    run.pointwiseNHWC(gatingRowsBy: scales, zeros: copy + filterScratch)
                }
            case (.pointwise, .nhwc) where prologue != nil:
                prologue?.scaleShift.withUnsafeBufferPointer { scaleShift in
                    guard let prologue, let scale = scaleShift.baseAddress else { return }
                    var prologued = run
                    prologued.prologue = keel_gemm_prologue(scale: scale, shift: scale + geometry.inputChannels,
                                                            relu: prologue.relu ? 1 : 0)
                    prologued.inputRowStride = prologue.inputRowStride
                    prologued.pointwiseNHWC()
                }
            case (.pointwise, .nhwc): run.pointwiseNHWC()
            case (.pointwise, .nchw): run.pointwiseNCHW()
            case (_, .nhwc): run.im2colNHWC()
            case (_, .nchw): run.im2colNCHW()
            }
        }
    }

    /// The pointwise NHWC product of `geometry`'s input rows on one filter group, unchecked:
    /// `ExpandedDepthwiseConvolution` checks its layer once and then calls this band by band.
    static func pointwiseRows(input: UnsafePointer<Float>, filter: PanelPackedFilter, filterBase: UnsafePointer<Float>,
                              epilogue: KernelEpilogue, output: UnsafeMutablePointer<Float>, geometry: Conv2DGeometry,
                              context: KernelContext) {
        ConvolutionRun(input: input, filter: filter, filterBase: filterBase, epilogue: epilogue, output: output,
                       geometry: geometry, scratch: nil, context: context).pointwiseNHWC()
    }

    /// Whether a gated pointwise NHWC layer (`apply(inputScales:)`) scales a copy of its filter
    /// per image, or its input rows as the GEMM packs them (a prologue). The copy, channels ×
    /// outputs per image, costs little against an image of at least four pixels per output, and
    /// the rows are then read in place; on smaller images (EfficientNet's 14×14 and 7×7 blocks) the
    /// copy outweighs packing the rows.
    public static func gateScalesFilter(_ geometry: Conv2DGeometry) -> Bool {
        !PanelGEMM.hasPrologue || geometry.outputPixelsPerImage >= gateCopyPixelsPerOutput * geometry.outputChannels
    }

    /// Pixels per output channel from which a scaled filter copy per image costs little.
    public static let gateCopyPixelsPerOutput = 4

    /// Throws unless the operands fit `geometry`; an `outputPixelStride` needs NHWC, no residual,
    /// and an output that reaches the last pixel's last channel at that stride.
    private static func validate(input: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
                                 residual: UnsafeBufferPointer<Float>?, output: UnsafeMutableBufferPointer<Float>,
                                 geometry: Conv2DGeometry, outputPixelStride: Int? = nil) throws {
        let name = "conv2d"
        try geometry.validate()
        try requireCapacity(input.count, geometry.inputElementCount, name, "input")
        if let stride = outputPixelStride {
            try require(geometry.layout == .nhwc && residual == nil && stride >= geometry.outputChannels, name,
                        "a strided output needs NHWC, no residual and a stride of at least the output channels")
            let pixels = geometry.batch * geometry.outputPixelsPerImage
            try requireCapacity(output.count, pixels == 0 ? 0 : (pixels - 1) * stride + geometry.outputChannels,
                                name, "output")
        } else {
            try requireCapacity(output.count, geometry.outputElementCount, name, "output")
        }
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        if let residual { try requireCapacity(residual.count, geometry.outputElementCount, name, "residual") }
    }
}

extension Conv2D {
    /// Winograd with filters already in the Winograd domain of `weights.tile`; `scratch` at least
    /// `scratchSize(for: geometry, algorithm: .winograd(weights.tile))` floats. With `maxPooled`, the activated
    /// output is 2×2 stride-2 max-pooled (floor mode) as each tile is written, so `output` holds
    /// [batch, height/2, width/2, outputChannels]; NHWC only. `outputPixelStride` (NHWC, not
    /// pooled, no residual) puts consecutive output pixels that many floats apart (`apply` on panels).
    public static func apply(input: UnsafeBufferPointer<Float>, weights: WinogradWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, maxPooled: Bool = false,
                             outputPixelStride: Int? = nil, context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try require(Winograd.supports(geometry), name,
                    "the Winograd algorithm needs a 3x3 kernel, stride 1, no dilation and one group")
        try require(!maxPooled || geometry.layout == .nhwc, name, "a fused max pool needs NHWC activations")
        try require(!maxPooled || residual == nil, name, "a fused max pool cannot follow a residual add")
        try require(!maxPooled || outputPixelStride == nil, name, "a fused max pool cannot write a strided output")
        if let residual { try requireCapacity(residual.count, geometry.outputElementCount, name, "residual") }
        try weights.check(against: geometry)
        if maxPooled {
            try geometry.validate()
            try requireCapacity(input.count, geometry.inputElementCount, name, "input")
            try requireCapacity(output.count, geometry.pooledOutputElementCount, name, "output")
        } else {
            try validate(input: input, bias: nil, residual: residual, output: output, geometry: geometry,
                         outputPixelStride: outputPixelStride)
        }
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        try requireCapacity(scratch.count, Winograd.scratchSize(for: geometry, weights.tile), name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let workspace = scratch.baseAddress else { return }
        weights.storage.withUnsafeBufferPointer { filters in
            guard let filterBase = filters.baseAddress else { return }
            // The tile transforms fuse bias and activation; a residual goes in between, in one pass.
            WinogradRun(input: source, weights: filterBase, weightLayout: weights.layout, bias: bias?.baseAddress,
                        activation: residual == nil ? activation : .identity,
                        output: destination, pixelStride: outputPixelStride ?? geometry.outputChannels,
                        geometry: geometry, tile: weights.tile, pooled: maxPooled, scratch: workspace,
                        scratchCount: scratch.count, context: context).run()
        }
        if let residual {
            applyResidual(residual.baseAddress, activation: activation, to: destination,
                          count: geometry.outputElementCount, context: context)
        }
    }

    /// The line-Winograd algorithm on weights transformed once (`LineWinogradWeights`); `scratch`
    /// at least `scratchSize(for:algorithm: .lineWinograd)` floats. Bias and activation are applied
    /// tile by tile as the output transform stores them; a residual follows in one pass.
    /// `outputPixelStride` (no residual; identity or ReLU) puts consecutive output pixels that many
    /// floats apart (`apply` on panels).
    public static func apply(input: UnsafeBufferPointer<Float>, weights: LineWinogradWeights,
                             bias: UnsafeBufferPointer<Float>? = nil, residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation = .identity,
                             output: UnsafeMutableBufferPointer<Float>, geometry: Conv2DGeometry,
                             scratch: UnsafeMutableBufferPointer<Float>, outputPixelStride: Int? = nil,
                             context: KernelContext = .singleThreaded) throws {
        let name = "conv2d"
        try require(LineWinograd.supports(geometry), name,
                    "the line Winograd algorithm needs a 1xk or kx1 kernel (k = 3, 5 or 7) or a 5x5 one, stride 1, no dilation, "
                        + "one group and NHWC activations")
        try require(outputPixelStride == nil || activation == .identity || activation == .relu, name,
                    "the line Winograd algorithm writes a strided output with no activation or ReLU only")
        try weights.check(against: geometry)
        try validate(input: input, bias: bias, residual: residual, output: output, geometry: geometry,
                     outputPixelStride: outputPixelStride)
        try requireCapacity(scratch.count, LineWinograd.scratchSize(for: geometry), name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let workspace = scratch.baseAddress, let transforms = LineWinogradTransforms.forTaps(weights.taps) else { return }
        // ReLU in the output transform, another activation with a vector form on each tile as it is
        // stored; a residual (added before the activation) or an activation without one in a pass after.
        let vectorForm = KernelTable.current.activate_rows != nil && KernelEpilogue.fusedActivation(activation) != nil
        let fused = residual == nil && (activation == .identity || activation == .relu || vectorForm)
        weights.storage.withUnsafeBufferPointer { filters in
            guard let filterBase = filters.baseAddress else { return }
            let pipeline = WinogradPipeline(blocking: LineWinograd.blocking(geometry), weights: filterBase,
                                            weightLayout: weights.layout, scratch: workspace, scratchCount: scratch.count,
                                            context: context)
            LineWinogradRun(input: source, bias: bias?.baseAddress, activation: fused ? activation : .identity,
                            output: destination, pixelStride: outputPixelStride ?? geometry.outputChannels,
                            geometry: geometry, transforms: transforms, pipeline: pipeline).run()
        }
        if !fused {
            applyResidual(residual?.baseAddress, activation: activation, to: destination,
                          count: geometry.outputElementCount, context: context)
        }
    }
}

/// One validated convolution call; the methods are the per-algorithm, per-layout GEMM loops.
/// Each product runs on Keel's panel GEMM with the epilogue fused (`gemm`), or through OpenBLAS
/// and a separate epilogue pass when no SIMD level is in use.
private struct ConvolutionRun {
    let input: UnsafePointer<Float>
    let filter: PanelPackedFilter
    var filterBase: UnsafePointer<Float>
    let epilogue: KernelEpilogue
    let output: UnsafeMutablePointer<Float>
    let geometry: Conv2DGeometry
    let scratch: UnsafeMutablePointer<Float>?
    var context: KernelContext
    /// Pointwise NHWC only: a BatchNorm (and ReLU) applied to the input rows as they are packed,
    /// and the elements between input rows when they are a slice of a wider buffer.
    var prologue: keel_gemm_prologue?
    var inputRowStride: Int?
    /// NHWC only: floats between consecutive output pixels when the output is a slice of a wider buffer.
    var outputPixelStride: Int?
    var pixelStride: Int { outputPixelStride ?? geometry.outputChannels }

    var reduction: Int { geometry.reductionLength }
    var outputPerGroup: Int { geometry.outputChannelsPerGroup }
    var pixelsPerImage: Int { geometry.outputPixelsPerImage }

    /// One output block's product with `group`'s filter, and its epilogue. NHWC: the block's rows
    /// are pixels, read from `activations` `activationStep` apart, and its columns channels (the
    /// filter is the right operand); NCHW: rows are channels (the filter, as Wᵀ, is the left
    /// operand) and columns pixels, each depth of `activations` `activationStep` apart.
    /// `firstChannel` and `offset` locate the block's bias and residual.
    /// NHWC only: `rowsPerBlock` > 0 reads the rows in blocks of that many, `blockStep` floats
    /// apart (a strided 1×1 convolution's output rows); `segment` reads the depths in segments of
    /// `depth`, `step` floats apart (the input read in place as its im2col matrix).
    func gemm(m: Int, n: Int, k: Int, activations: UnsafePointer<Float>, activationStep: Int, group: Int,
              block: OutputBlock, firstChannel: Int, offset: Int, rowsPerBlock: Int = 0, blockStep: Int = 0,
              segment: (depth: Int, step: Int) = (0, 0)) {
        var fused = epilogue
        fused.bias = epilogue.bias.map { $0 + firstChannel }
        fused.residual = epilogue.residual.map { $0 + offset }
        let channelsAreRows = filter.operand == .left
        let left = channelsAreRows
            ? filter.left(filterBase, group: group)
            : keel_gemm_left(base: activations, row_step: activationStep, depth_step: 1, block_rows: rowsPerBlock,
                             block_step: blockStep, segment_depth: segment.depth, segment_step: segment.step)
        let right = channelsAreRows
            ? PanelGEMM.rowMajorRight(activations, depthStep: activationStep)
            : filter.right(filterBase, group: group)
        if PanelGEMM.multiply(m: m, n: n, k: k, left: left, right: right, c: block.base, ldc: block.rowStride,
                              epilogue: fused, biasPerRow: channelsAreRows, residualStride: block.rowStride,
                              context: context, prologue: prologue) { return }
        PanelGEMM.multiplyWithBLAS(m: m, n: n, k: k, left: left, right: right, c: block.base, ldc: block.rowStride,
                                   context: context)
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
            let block = OutputBlock(base: output + channel, rows: pixels, columns: outputPerGroup, rowStride: pixelStride)
            gemm(m: pixels, n: outputPerGroup, k: inputPerGroup, activations: input + group * inputPerGroup,
                 activationStep: inputRowStride ?? geometry.inputChannels, group: group, block: block,
                 firstChannel: channel, offset: channel)
        }
    }

    /// pointwiseNHWC with each image's input channels multiplied by its row of `inputScales`:
    /// (x·diag(s))·W as x·(diag(s)·W), the image's rows against a copy of the filter whose depth
    /// rows are scaled. Where the filter is smaller than the image's activations (the plan's rule),
    /// the copy costs less than writing the gated activations and reading them back.
    func pointwiseNHWC(inputScales: UnsafePointer<Float>, filterCopy: UnsafeMutablePointer<Float>) {
        let (pixels, channels, outputs) = (pixelsPerImage, geometry.inputChannels, geometry.outputChannels)
        let rowStride = inputRowStride ?? channels
        var scaled = self
        scaled.filterBase = UnsafePointer(filterCopy)
        for image in 0..<geometry.batch {
            filter.scalingDepthRows(filterBase, by: inputScales + image * channels, into: filterCopy)
            let block = OutputBlock(base: output + image * pixels * outputs, rows: pixels, columns: outputs,
                                    rowStride: outputs)
            scaled.gemm(m: pixels, n: outputs, k: channels, activations: input + image * pixels * rowStride,
                        activationStep: rowStride, group: 0, block: block, firstChannel: 0, offset: image * pixels * outputs)
        }
    }

    /// pointwiseNHWC with each image's input channels multiplied by its row of `inputScales`
    /// as the GEMM packs the image's rows: a prologue of scale s and shift 0 (`zeros`, room for
    /// the input channels), one product per image.
    func pointwiseNHWC(gatingRowsBy inputScales: UnsafePointer<Float>, zeros: UnsafeMutablePointer<Float>) {
        let (pixels, channels, outputs) = (pixelsPerImage, geometry.inputChannels, geometry.outputChannels)
        let rowStride = inputRowStride ?? channels
        zeros.initialize(repeating: 0, count: channels)
        var gated = self
        for image in 0..<geometry.batch {
            gated.prologue = keel_gemm_prologue(scale: inputScales + image * channels, shift: zeros, relu: 0)
            let block = OutputBlock(base: output + image * pixels * outputs, rows: pixels, columns: outputs,
                                    rowStride: outputs)
            gated.gemm(m: pixels, n: outputs, k: channels, activations: input + image * pixels * rowStride,
                       activationStep: rowStride, group: 0, block: block, firstChannel: 0, offset: image * pixels * outputs)
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
                gemm(m: outputPerGroup, n: pixelsPerImage, k: inputPerGroup, activations: source,
                     activationStep: pixelsPerImage, group: group, block: block,
                     firstChannel: group * outputPerGroup, offset: offset)
            }
        }
    }

    /// NHWC tiles run over pixels of the whole batch, so small late layers still make one tall GEMM.
    func im2colNHWC() {
        if filter.operand == .right && geometry.kernel == .one && geometry.padding == .zero {
            return strided1x1NHWC()
        }
        if filter.operand == .right, PanelGEMM.isPresent, let region = InPlaceRegion(geometry) {
            return inPlaceNHWC(region)
        }
        im2colNHWC(first: 0, count: geometry.batch * pixelsPerImage)
    }

    /// im2col tiles over `count` output pixels from `first`, `step` apart (counted over batch ×
    /// output rows × output columns).
    private func im2colNHWC(first: Int, count: Int, step: Int = 1) {
        guard let columns = scratch, count > 0 else { return }
        // The scratch holds a tile of the whole layer's pixels.
        let tile = min(count, Im2Col.tilePixels(reduction: reduction, pixels: geometry.batch * pixelsPerImage))
        for tileStart in stride(from: 0, to: count, by: tile) {
            let pixels = min(tile, count - tileStart), pixel = first + tileStart * step
            for group in 0..<geometry.groups {
                Im2Col.fillNHWC(input: input, geometry: geometry, group: group, pixelStart: pixel, pixelCount: pixels,
                                pixelStep: step, columns: columns, context: context)
                let offset = pixel * pixelStride + group * outputPerGroup
                let block = OutputBlock(base: output + offset, rows: pixels, columns: outputPerGroup,
                                        rowStride: pixelStride * step)
                gemm(m: pixels, n: outputPerGroup, k: reduction, activations: columns, activationStep: reduction,
                     group: group, block: block, firstChannel: group * outputPerGroup, offset: offset)
            }
        }
    }

    /// The output pixels whose taps `region` says all lie inside the input read the input in
    /// place as their im2col matrix, one product per output row: a pixel's row of it is, kernel
    /// row by kernel row, the kernel's width of adjacent input pixels, `kernel width × channels`
    /// contiguous floats (a segment of the product's depth), and consecutive pixels are `stride ×
    /// channels` apart. The pixels around the region, whose taps reach into the padding, go
    /// through im2col. Copying the columns cost layers of few channels a third of their time
    /// (HRNet's 64-channel 3×3 stride-2 layer at 112×112: 118 GFLOP/s against its GEMM's 190).
    private func inPlaceNHWC(_ region: InPlaceRegion) {
        let out = geometry.output
        for image in 0..<geometry.batch {
            let first = image * pixelsPerImage
            im2colNHWC(first: first, count: region.rows.lowerBound * out.width)
            im2colNHWC(first: first + region.rows.upperBound * out.width,
                       count: (out.height - region.rows.upperBound) * out.width)
            for column in Array(0..<region.columns.lowerBound) + Array(region.columns.upperBound..<out.width) {
                im2colNHWC(first: first + region.rows.lowerBound * out.width + column, count: region.rows.count,
                           step: out.width)
            }
        }
        let (width, channels) = (geometry.input.width, geometry.inputChannels)
        let (stride, padding) = (geometry.stride, geometry.padding)
        let segment = (depth: geometry.kernel.width * channels, step: width * channels)
        var single = self
        single.context = .singleThreaded
        context.forEachStolenPiece(geometry.batch * region.rows.count, minimumPiece: 1) { rows, _ in
            for index in rows {
                let (image, row) = index.quotientAndRemainder(dividingBy: region.rows.count)
                let outputRow = region.rows.lowerBound + row
                let inputRow = outputRow * stride.height - padding.top
                let inputColumn = region.columns.lowerBound * stride.width - padding.left
                let source = input + ((image * geometry.input.height + inputRow) * width + inputColumn) * channels
                let offset = ((image * out.height + outputRow) * out.width + region.columns.lowerBound) * pixelStride
                let block = OutputBlock(base: output + offset, rows: region.columns.count,
                                        columns: geometry.outputChannels, rowStride: pixelStride)
                single.gemm(m: region.columns.count, n: geometry.outputChannels, k: reduction, activations: source,
                            activationStep: stride.width * channels, group: 0, block: block, firstChannel: 0,
                            offset: offset, segment: segment)
            }
        }
    }

    /// An unpadded 1×1 kernel with strides: its im2col matrix is the input itself, every
    /// stride-th pixel of every stride-th row, so the GEMM reads it in place, one block of rows per
    /// output row (PyTorch's ResNet downsampling layers: 75–86 GFLOP/s through the copy, one
    /// Zen 4 core). The whole batch is one product when the images' rows are evenly spaced.
    private func strided1x1NHWC() {
        let inputPerGroup = geometry.inputChannelsPerGroup
        let pixelStep = geometry.stride.width * geometry.inputChannels
        let rowStep = geometry.stride.height * geometry.input.width * geometry.inputChannels
        let evenlySpaced = geometry.input.height == geometry.stride.height * geometry.output.height
        let images = evenlySpaced ? [0..<geometry.batch] : (0..<geometry.batch).map { $0..<($0 + 1) }
        for range in images {
            let source = input + range.lowerBound * geometry.input.height * geometry.input.width * geometry.inputChannels
            let firstPixel = range.lowerBound * pixelsPerImage, pixels = range.count * pixelsPerImage
            for group in 0..<geometry.groups {
                let offset = firstPixel * pixelStride + group * outputPerGroup
                let block = OutputBlock(base: output + offset, rows: pixels, columns: outputPerGroup, rowStride: pixelStride)
                gemm(m: pixels, n: outputPerGroup, k: inputPerGroup, activations: source + group * inputPerGroup,
                     activationStep: pixelStep, group: group, block: block, firstChannel: group * outputPerGroup,
                     offset: offset, rowsPerBlock: geometry.output.width, blockStep: rowStep)
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
                    gemm(m: outputPerGroup, n: count, k: reduction, activations: columns, activationStep: count,
                         group: group, block: block, firstChannel: group * outputPerGroup, offset: offset)
                }
            }
        }
    }
}

/// The output rows and columns of an NHWC convolution (one group, no dilation, a kernel wider than
/// 1×1) whose taps all lie inside the input, where `ConvolutionRun` reads the input in place; nil
/// when fewer than `minimumColumns` columns do, whose products would be too short to pay.
struct InPlaceRegion {
    let rows: Range<Int>
    let columns: Range<Int>
    static let minimumColumns = 32

    init?(_ geometry: Conv2DGeometry) {
        guard geometry.layout == .nhwc, geometry.groups == 1, geometry.dilation == .one, geometry.kernel != .one
        else { return nil }
        /// Outputs whose window of `kernel` inputs from `index · stride − before` lies in `0..<size`.
        func inside(size: Int, kernel: Int, stride: Int, before: Int, outputs: Int) -> Range<Int> {
            let low = min(outputs, (before + stride - 1) / stride)
            let reach = size - kernel + before
            let high = reach < 0 ? 0 : min(outputs, reach / stride + 1)
            return low..<max(low, high)
        }
        let output = geometry.output
        rows = inside(size: geometry.input.height, kernel: geometry.kernel.height, stride: geometry.stride.height,
                      before: geometry.padding.top, outputs: output.height)
        columns = inside(size: geometry.input.width, kernel: geometry.kernel.width, stride: geometry.stride.width,
                         before: geometry.padding.left, outputs: output.width)
        guard !rows.isEmpty, columns.count >= Self.minimumColumns else { return nil }
    }
}
