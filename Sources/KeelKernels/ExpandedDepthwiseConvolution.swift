/// A pointwise (1×1) expansion and the depthwise layer that reads it, run together band by band of
/// output rows: MobileNet's and EfficientNet's inverted residual blocks widen 16–40 channels to
/// 96–240 on 112×112 and 56×56 maps, and the widened tensor (4.8 MB for 112×112×96) is the largest
/// of the model. Run as two layers it is written to memory by the 1×1 product and read back by the
/// depthwise one. Here each thread takes a contiguous range of output rows and, band after band,
/// computes just the expanded rows the band's filter windows need into an L2-sized buffer
/// (keeping the rows the next band shares with this one), then runs the depthwise kernel on that
/// buffer. Every value is the same product and the same sums as the separate layers compute: the
/// bits do not change, only where the expanded values live.
import CSIMDKernels

public enum ExpandedDepthwiseConvolution {
    /// Bytes of expanded rows a band's buffer holds: a quarter of a 1 MB L2, so the rows the
    /// product writes are still there when the depthwise kernel reads them, with room for the
    /// filters and the rows streaming in and out. (MobileNetV2 and EfficientNet-B0 on Zen 4: 64 KB
    /// to 512 KB within 2% of each other, 256 KB the fastest by a hair.)
    static let bandBytes = 256 * 1024

    /// Whether the pair runs fused on this CPU: a pointwise NHWC expansion on one group, read by an
    /// NHWC depthwise layer with one filter per channel (no multiplier), undilated, whose padding
    /// is narrower than its filter (so every band reads at least one expanded row), with the panel
    /// GEMM and the depthwise kernel both present.
    public static func canRun(expansion: Conv2DGeometry, depthwise: Conv2DGeometry) -> Bool {
        expansion.layout == .nhwc && depthwise.layout == .nhwc && expansion.isPointwise && expansion.groups == 1
            && expansion.batch == depthwise.batch && expansion.input == depthwise.input
            && expansion.outputChannels == depthwise.inputChannels && depthwise.outputChannels == depthwise.inputChannels
            && DepthwiseConvolution.isPreferred(for: depthwise) && PanelGEMM.isPresent
            && depthwise.dilation == .one && depthwise.padding.top < depthwise.kernel.height
            && depthwise.padding.bottom < depthwise.kernel.height
    }

    /// Output rows per band: as many as keep the band's expanded rows within `bandBytes`.
    static func bandRows(_ depthwise: Conv2DGeometry) -> Int {
        let rowBytes = depthwise.input.width * depthwise.inputChannels * MemoryLayout<Float>.size
        let rows = bandBytes / max(1, rowBytes * depthwise.stride.height)
        return max(1, min(rows, depthwise.output.height))
    }

    /// Expanded rows a band of `bandRows` output rows reads.
    private static func bufferRows(_ depthwise: Conv2DGeometry) -> Int {
        (bandRows(depthwise) - 1) * depthwise.stride.height + depthwise.kernel.height
    }

    /// Floats of each thread's band buffer, a whole number of cache lines.
    private static func bufferFloats(_ depthwise: Conv2DGeometry) -> Int {
        (bufferRows(depthwise) * depthwise.input.width * depthwise.inputChannels + 15) / 16 * 16
    }

    /// Scratch for `threads` threads' band buffers.
    public static func scratchSize(for depthwise: Conv2DGeometry, threads: Int) -> Int {
        max(1, threads) * bufferFloats(depthwise) + 16
    }

    /// output = activation(depthwise(expansionActivation(input × expansion + expansionBias)) + bias
    /// + residual), the expanded tensor never stored whole. `expansionGeometry` is the 1×1 layer's
    /// (NHWC, one group), `geometry` the depthwise layer's; `scratch` at least
    /// `scratchSize(for: geometry, threads: context.threads)` floats.
    public static func apply(input: UnsafeBufferPointer<Float>, expansion: PanelConv2DWeights,
                             expansionBias: UnsafeBufferPointer<Float>?, expansionActivation: UnaryOperation,
                             expansionGeometry: Conv2DGeometry, weights: PackedConv2DWeights,
                             bias: UnsafeBufferPointer<Float>?, residual: UnsafeBufferPointer<Float>?,
                             activation: UnaryOperation, output: UnsafeMutableBufferPointer<Float>,
                             geometry: Conv2DGeometry, scratch: UnsafeMutableBufferPointer<Float>,
                             context: KernelContext) throws {
        let name = "conv2d (expansion and depthwise)"
        try expansionGeometry.validate()
        try geometry.validate()
        try expansion.check(against: expansionGeometry)
        try weights.check(against: geometry)
        try require(canRun(expansion: expansionGeometry, depthwise: geometry), name,
                    "needs an NHWC 1×1 expansion on one group into an undilated NHWC depthwise layer of as many "
                        + "channels, padded less than its filter, and the SIMD GEMM and depthwise kernels")
        try requireCapacity(input.count, expansionGeometry.inputElementCount, name, "input")
        try requireCapacity(output.count, geometry.outputElementCount, name, "output")
        if let expansionBias { try requireCapacity(expansionBias.count, expansionGeometry.outputChannels, name, "expansion bias") }
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        if let residual { try requireCapacity(residual.count, geometry.outputElementCount, name, "residual") }
        let threads = max(1, context.threads)
        try requireCapacity(scratch.count, scratchSize(for: geometry, threads: threads), name, "scratch")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let scratchBase = scratch.baseAddress else { return }
        // The first cache line of scratch (the planner aligns its start; this keeps each buffer on a line).
        let misalignment = Int(bitPattern: scratchBase) % 64 / MemoryLayout<Float>.size
        let buffers = scratchBase + (misalignment == 0 ? 0 : 16 - misalignment)
        let bands = Bands(expansion: expansionGeometry, depthwise: geometry)
        try require(weights.tapMajor != nil, name, "the depthwise filter has no tap-major form")
        expansion.filter.storage.withUnsafeBufferPointer { packed in
            weights.tapMajor?.withUnsafeBufferPointer { tapMajor in
                guard let filterBase = packed.baseAddress, let taps = tapMajor.baseAddress else { return }
                let expand = KernelEpilogue(bias: expansionBias?.baseAddress, residual: nil, activation: expansionActivation)
                let filtered = KernelEpilogue(bias: bias?.baseAddress, residual: residual?.baseAddress, activation: activation)
                // Whole output rows of the batch, one contiguous range per thread; a range that
                // starts inside an image recomputes the few expanded rows its first band shares
                // with the rows before it.
                let rows = geometry.batch * geometry.output.height
                context.forEachBalancedChunk(rows, chunks: threads) { range, index in
                    let buffer = buffers + index * bufferFloats(geometry)
                    var row = range.lowerBound
                    while row < range.upperBound {
                        let image = row / geometry.output.height, first = row % geometry.output.height
                        let end = min(geometry.output.height, first + range.upperBound - row)
                        bands.run(image: image, rows: first..<end, input: source, expansion: expansion.filter,
                                  expansionFilter: filterBase, expand: expand, taps: taps, filtered: filtered,
                                  output: destination, buffer: buffer)
                        row += end - first
                    }
                }
            }
        }
    }
}

/// One image's output rows, band by band.
private struct Bands {
    let expansion: Conv2DGeometry
    let depthwise: Conv2DGeometry
    let bandRows: Int

    init(expansion: Conv2DGeometry, depthwise: Conv2DGeometry) {
        self.expansion = expansion
        self.depthwise = depthwise
        bandRows = ExpandedDepthwiseConvolution.bandRows(depthwise)
    }

    /// The input rows output rows `rows` read, clipped to the image.
    private func inputRows(_ rows: Range<Int>) -> Range<Int> {
        let stride = depthwise.stride.height, top = depthwise.padding.top
        let first = max(0, rows.lowerBound * stride - top)
        let end = min(depthwise.input.height, (rows.upperBound - 1) * stride - top + depthwise.kernel.height)
        return first..<max(first, end)
    }

    func run(image: Int, rows: Range<Int>, input: UnsafePointer<Float>, expansion filter: PanelPackedFilter,
             expansionFilter: UnsafePointer<Float>, expand: KernelEpilogue, taps: UnsafePointer<Float>,
             filtered: KernelEpilogue, output: UnsafeMutablePointer<Float>, buffer: UnsafeMutablePointer<Float>) {
        let (width, height) = (depthwise.input.width, depthwise.input.height)
        let (inputChannels, channels) = (expansion.inputChannels, depthwise.inputChannels)
        let rowFloats = width * channels
        let outputRowFloats = depthwise.output.width * depthwise.outputChannels
        var held = 0..<0
        var band = rows.lowerBound
        while band < rows.upperBound {
            let bandEnd = min(rows.upperBound, band + bandRows)
            let needed = inputRows(band..<bandEnd)
            // Rows the previous band already expanded move to the front of the buffer.
            var fresh = needed.lowerBound
            if held.contains(needed.lowerBound) {
                let kept = held.upperBound - needed.lowerBound
                UnsafeMutableRawPointer(buffer).copyMemory(from: buffer + (needed.lowerBound - held.lowerBound) * rowFloats,
                                                           byteCount: kept * rowFloats * MemoryLayout<Float>.size)
                fresh = held.upperBound
            }
            if fresh < needed.upperBound {
                var rowsGeometry = expansion
                rowsGeometry.batch = 1
                rowsGeometry.input = Size2D(needed.upperBound - fresh, width)
                Conv2D.pointwiseRows(input: input + ((image * height + fresh) * width) * inputChannels, filter: filter,
                                     filterBase: expansionFilter, epilogue: expand,
                                     output: buffer + (fresh - needed.lowerBound) * rowFloats, geometry: rowsGeometry,
                                     context: .singleThreaded)
            }
            held = needed
            // The band as a depthwise layer of its own over the buffer: its padding is what of
            // the layer's lies above and below the rows it reads.
            var bandGeometry = depthwise
            bandGeometry.batch = 1
            bandGeometry.input = Size2D(needed.count, width)
            let top = band * depthwise.stride.height - depthwise.padding.top
            let bottom = (bandEnd - 1) * depthwise.stride.height - depthwise.padding.top + depthwise.kernel.height
            bandGeometry.padding = Padding2D(top: needed.lowerBound - top, left: depthwise.padding.left,
                                             bottom: max(0, bottom - needed.upperBound), right: depthwise.padding.right)
            let offset = (image * depthwise.output.height + band) * outputRowFloats
            var epilogue = filtered
            epilogue.residual = filtered.residual.map { $0 + offset }
            _ = DepthwiseConvolution.run(input: buffer, weights: taps, epilogue: epilogue, output: output + offset,
                                         geometry: bandGeometry, scratch: UnsafeMutableBufferPointer(start: nil, count: 0),
                                         context: .singleThreaded)
            band = bandEnd
        }
    }
}
