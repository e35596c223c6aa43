import CSIMDKernels

/// Max/average pooling over explicit geometry. The caller chooses the output size (that is where
/// "same" padding and ceil_mode are decided, see `slidingWindowOutputSize`), so the kernel only
/// clips each window to the input: NHWC loops run channels innermost (as the kernel table's
/// `pool_rows`, CSIMDKernels/pooling.h, where the CPU has a SIMD level), NCHW loops run planes.

public struct Pool2DGeometry: Sendable, Equatable {
    public var batch: Int
    public var channels: Int
    public var input: Size2D
    public var output: Size2D
    public var window: Size2D
    public var stride: Size2D
    public var padding: Padding2D
    public var layout: ActivationLayout
    /// Gap between the window's taps (ONNX `dilations`): a window of k taps spans (k-1)·dilation+1.
    public var dilation: Size2D

    public init(batch: Int, channels: Int, input: Size2D, output: Size2D, window: Size2D,
                stride: Size2D, padding: Padding2D = .zero, layout: ActivationLayout = .nhwc,
                dilation: Size2D = .one) {
        self.batch = batch
        self.channels = channels
        self.input = input
        self.output = output
        self.window = window
        self.stride = stride
        self.padding = padding
        self.layout = layout
        self.dilation = dilation
    }

    public var inputElementCount: Int { batch * channels * input.height * input.width }
    public var outputElementCount: Int { batch * channels * output.height * output.width }

    /// Throws unless every extent is usable and each output window starts inside the padded input.
    public func validate() throws {
        try validate("pool2d")
    }

    func validate(_ name: String) throws {
        let extents = [batch, channels, input.height, input.width, output.height, output.width, window.height,
                       window.width, stride.height, stride.width, padding.top, padding.left, padding.bottom,
                       padding.right, dilation.height, dilation.width]
        try require(extents.allSatisfy { $0 <= Int(Int32.max) }, name, "extents beyond 2^31 are not supported")
        try require(batch >= 0 && channels > 0, name, "batch \(batch) and channels \(channels)")
        try require(input.height > 0 && input.width > 0 && output.height > 0 && output.width > 0, name,
                    "input \(input) and output \(output) must be positive")
        try require(window.height > 0 && window.width > 0 && stride.height > 0 && stride.width > 0, name,
                    "window \(window) and strides \(stride) must be positive")
        try require(dilation.height > 0 && dilation.width > 0, name, "dilations \(dilation) must be positive")
        try require(padding.top >= 0 && padding.left >= 0 && padding.bottom >= 0 && padding.right >= 0, name,
                    "pads \(padding) must not be negative")
        try require((output.height - 1) * stride.height < input.height + padding.top
                        && (output.width - 1) * stride.width < input.width + padding.left, name,
                    "output \(output) has windows starting past the input \(input)")
        _ = try elementCount([batch, channels, input.height, input.width], name)
        _ = try elementCount([batch, channels, output.height, output.width], name)
    }
}

/// The taps of one window along one axis that fall inside the input, plus how many fall inside
/// the padded input (the ONNX count_include_pad divisor). Tap t sits at start + t·dilation.
private struct WindowTaps {
    var positions: StrideTo<Int>
    var validCount: Int
    var paddedCount: Int

    init(output: Int, input: Int, window: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int) {
        let start = output * stride - padBegin
        let lastPosition = input - 1 - start
        let paddedRoom = input + padEnd - start
        let firstTap: Int
        let endTap: Int
        if dilation == 1 {
            // The common case, without divisions.
            firstTap = max(0, -start)
            endTap = lastPosition < 0 ? 0 : min(window, lastPosition + 1)
            paddedCount = max(0, min(window, paddedRoom))
        } else {
            firstTap = start >= 0 ? 0 : (dilation - 1 - start) / dilation
            endTap = lastPosition < 0 ? 0 : min(window, lastPosition / dilation + 1)
            paddedCount = paddedRoom <= 0 ? 0 : min(window, (paddedRoom + dilation - 1) / dilation)
        }
        validCount = max(0, endTap - firstTap)
        let from = start + firstTap * dilation
        positions = Swift.stride(from: from, to: from + validCount * dilation, by: dilation)
    }
}

/// One window clipped to the input, plus the averaging divisor for both count modes.
private struct PoolWindow {
    var rows: WindowTaps
    var columns: WindowTaps

    init(rows: WindowTaps, columns: WindowTaps) {
        self.rows = rows
        self.columns = columns
    }

    init(_ geometry: Pool2DGeometry, outputRow: Int, outputColumn: Int) {
        rows = WindowTaps(output: outputRow, input: geometry.input.height, window: geometry.window.height,
                          stride: geometry.stride.height, dilation: geometry.dilation.height,
                          padBegin: geometry.padding.top, padEnd: geometry.padding.bottom)
        columns = WindowTaps(output: outputColumn, input: geometry.input.width, window: geometry.window.width,
                             stride: geometry.stride.width, dilation: geometry.dilation.width,
                             padBegin: geometry.padding.left, padEnd: geometry.padding.right)
    }

    func divisor(countIncludePad: Bool) -> Float {
        Float(max(1, countIncludePad ? rows.paddedCount * columns.paddedCount : rows.validCount * columns.validCount))
    }
}

private enum PoolKind {
    case max
    case average(countIncludePad: Bool)
}

/// Where max pooling starts, and the least it returns: the lowest finite float, as in ONNX Runtime
/// (whose windows of -inf pool to -3.4e38 too). A NaN anywhere in a window pools to NaN.
let lowestPooled = -Float.greatestFiniteMagnitude

public enum Pooling {
    /// Max pooling; padding never wins (it acts as -infinity).
    public static func maxPool(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                               geometry: Pool2DGeometry, context: KernelContext = .singleThreaded) throws {
        try pool(.max, "max_pool2d", input, output, geometry, context)
    }

    /// Whether a max pool only picks pixels: a 1×1 window, unpadded, NHWC (the stride-hoisting
    /// pass's subsample of a residual). It then copies values without arithmetic, so it can move
    /// bf16 values as they are (`subsampleBF16`).
    public static func isSubsample(_ geometry: Pool2DGeometry) -> Bool {
        geometry.window == .one && geometry.padding == .zero && geometry.layout == .nhwc
    }

    /// A subsample (`isSubsample`) of bf16 values, two per float slot of `input` and `output`:
    /// each output pixel's channels copied from its input pixel.
    public static func subsampleBF16(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                     geometry: Pool2DGeometry) throws {
        let name = "max_pool2d"
        try require(isSubsample(geometry), name, "only a 1x1 unpadded NHWC window moves bf16 values")
        let (input2D, output2D, channels) = (geometry.input, geometry.output, geometry.channels)
        let pixelBytes = channels * MemoryLayout<UInt16>.size
        try requireCapacity(input.count * 2, geometry.batch * input2D.height * input2D.width * channels, name, "input")
        try requireCapacity(output.count * 2, geometry.batch * output2D.height * output2D.width * channels, name, "output")
        guard let source = input.baseAddress.map(UnsafeRawPointer.init),
              let target = output.baseAddress.map(UnsafeMutableRawPointer.init) else { return }
        for image in 0..<geometry.batch {
            for row in 0..<output2D.height {
                let sourceRow = (image * input2D.height + row * geometry.stride.height) * input2D.width
                let targetRow = (image * output2D.height + row) * output2D.width
                for column in 0..<output2D.width {
                    (target + (targetRow + column) * pixelBytes).copyMemory(
                        from: source + (sourceRow + column * geometry.stride.width) * pixelBytes, byteCount: pixelBytes)
                }
            }
        }
    }

    /// Average pooling; `countIncludePad` divides by the padded window area instead of the valid count.
    public static func averagePool(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                   geometry: Pool2DGeometry, countIncludePad: Bool = false,
                                   context: KernelContext = .singleThreaded) throws {
        try pool(.average(countIncludePad: countIncludePad), "avg_pool2d", input, output, geometry, context)
    }

    /// Mean over the spatial axes: [N, H, W, C] or [N, C, H, W] -> [N, C].
    public static func globalAveragePool(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                         batch: Int, channels: Int, spatial: Int, layout: ActivationLayout,
                                         context: KernelContext = .singleThreaded) throws {
        try globalPool(average: true, input, output, batch, channels, spatial, layout, context)
    }

    /// Maximum over the spatial axes: [N, H, W, C] or [N, C, H, W] -> [N, C].
    public static func globalMaxPool(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                     batch: Int, channels: Int, spatial: Int, layout: ActivationLayout,
                                     context: KernelContext = .singleThreaded) throws {
        try globalPool(average: false, input, output, batch, channels, spatial, layout, context)
    }

    private static func pool(_ kind: PoolKind, _ name: String, _ input: UnsafeBufferPointer<Float>,
                             _ output: UnsafeMutableBufferPointer<Float>, _ geometry: Pool2DGeometry,
                             _ context: KernelContext) throws {
        try geometry.validate(name)
        try requireCapacity(input.count, geometry.inputElementCount, name, "input")
        try requireCapacity(output.count, geometry.outputElementCount, name, "output")
        guard geometry.batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let (channels, inputSize, outputSize) = (geometry.channels, geometry.input, geometry.output)
        switch geometry.layout {
        case .nhwc:
            // One work item per output row of one image; channels are the contiguous inner loop.
            let items = geometry.batch * outputSize.height
            let minimumChunk = max(1, parallelGrain / (outputSize.width * channels))
            if let kernel = KernelTable.current.pool_rows {
                var description = kernelDescription(kind, geometry, source, destination)
                context.forEachChunk(items, minimumChunk: minimumChunk) { range in
                    kernel(&description, range.lowerBound, range.count)
                }
                return
            }
            context.forEachChunk(items, minimumChunk: minimumChunk) { range in
                for item in range {
                    let image = item / outputSize.height
                    let outputRow = item - image * outputSize.height
                    for outputColumn in 0..<outputSize.width {
                        let window = PoolWindow(geometry, outputRow: outputRow, outputColumn: outputColumn)
                        let target = destination + ((item * outputSize.width) + outputColumn) * channels
                        let initial: Float
                        if case .max = kind { initial = lowestPooled } else { initial = 0 }
                        target.update(repeating: initial, count: channels)
                        for row in window.rows.positions {
                            for column in window.columns.positions {
                                let pixel = source + ((image * inputSize.height + row) * inputSize.width + column) * channels
                                if case .max = kind {
                                    for channel in 0..<channels { target[channel] = propagatingMax(target[channel], pixel[channel]) }
                                } else {
                                    for channel in 0..<channels { target[channel] += pixel[channel] }
                                }
                            }
                        }
                        if case let .average(includePad) = kind {
                            let scale = 1 / window.divisor(countIncludePad: includePad)
                            for channel in 0..<channels { target[channel] *= scale }
                        }
                    }
                }
            }
        case .nchw:
            // One work item per channel plane. Each output row first combines its window's input
            // rows into one row (contiguous, so the loop vectorises), then each output column its
            // window's taps of that row: kh + kw steps per output instead of kh·kw, and PoolFormer's
            // 3×3 stride-1 pools no longer cost more than the convolutions around them.
            let planes = geometry.batch * channels
            let outputPlane = outputSize.height * outputSize.width
            let isMax: Bool
            if case .max = kind { isMax = true } else { isMax = false }
            let columnWindows = (0..<outputSize.width).map { PoolWindow(geometry, outputRow: 0, outputColumn: $0).columns }
            context.forEachChunk(planes, minimumChunk: max(1, parallelGrain / outputPlane)) { range in
                let combined = UnsafeMutablePointer<Float>.allocate(capacity: inputSize.width)
                defer { combined.deallocate() }
                for plane in range {
                    let sourcePlane = source + plane * inputSize.height * inputSize.width
                    let targetPlane = destination + plane * outputPlane
                    for outputRow in 0..<outputSize.height {
                        let rows = PoolWindow(geometry, outputRow: outputRow, outputColumn: 0).rows
                        combined.update(repeating: isMax ? lowestPooled : 0, count: inputSize.width)
                        for row in rows.positions {
                            let line = sourcePlane + row * inputSize.width
                            if isMax {
                                for column in 0..<inputSize.width { combined[column] = propagatingMax(combined[column], line[column]) }
                            } else {
                                for column in 0..<inputSize.width { combined[column] += line[column] }
                            }
                        }
                        let target = targetPlane + outputRow * outputSize.width
                        // Columns whose whole window lies in the row, at stride 1: shifted rows
                        // combined element by element (vectorised), one divisor for all.
                        var interior = 0..<0
                        if geometry.stride.width == 1 && geometry.dilation.width == 1 {
                            let (window, padLeft) = (geometry.window.width, geometry.padding.left)
                            let upper = min(outputSize.width, inputSize.width - window + padLeft + 1)
                            if upper > padLeft { interior = padLeft..<upper }
                        }
                        if let first = interior.first {
                            let count = interior.count
                            let out = target + first
                            let row = combined + first - geometry.padding.left
                            out.update(from: row, count: count)
                            for tap in 1..<geometry.window.width {
                                let shifted = row + tap
                                if isMax {
                                    for index in 0..<count { out[index] = propagatingMax(out[index], shifted[index]) }
                                } else {
                                    for index in 0..<count { out[index] += shifted[index] }
                                }
                            }
                            if case let .average(includePad) = kind {
                                let scale = 1 / PoolWindow(rows: rows, columns: columnWindows[first]).divisor(countIncludePad: includePad)
                                for index in 0..<count { out[index] *= scale }
                            }
                        }
                        for (outputColumn, columns) in columnWindows.enumerated() where !interior.contains(outputColumn) {
                            var value: Float = isMax ? lowestPooled : 0
                            for column in columns.positions {
                                value = isMax ? propagatingMax(value, combined[column]) : value + combined[column]
                            }
                            if case let .average(includePad) = kind {
                                value /= PoolWindow(rows: rows, columns: columns).divisor(countIncludePad: includePad)
                            }
                            target[outputColumn] = value
                        }
                    }
                }
            }
        }
    }

    /// The C kernel's view of an NHWC pooling (the vector form of the loops above, same bits).
    private static func kernelDescription(_ kind: PoolKind, _ geometry: Pool2DGeometry, _ source: UnsafePointer<Float>,
                                          _ destination: UnsafeMutablePointer<Float>) -> keel_pool2d {
        var (average, includePad) = (false, false)
        if case let .average(countIncludePad) = kind { (average, includePad) = (true, countIncludePad) }
        return keel_pool2d(
            input: source, output: destination, batch: geometry.batch, channels: geometry.channels,
            input_height: geometry.input.height, input_width: geometry.input.width,
            output_height: geometry.output.height, output_width: geometry.output.width,
            window_height: geometry.window.height, window_width: geometry.window.width,
            stride_height: geometry.stride.height, stride_width: geometry.stride.width,
            dilation_height: geometry.dilation.height, dilation_width: geometry.dilation.width,
            pad_top: geometry.padding.top, pad_left: geometry.padding.left,
            pad_bottom: geometry.padding.bottom, pad_right: geometry.padding.right,
            average: average ? 1 : 0, count_include_pad: includePad ? 1 : 0, pixel_stride: geometry.channels)
    }

    /// Channels a global pool's slice starts on a multiple of: whole AVX-512 vectors.
    private static let globalPoolSliceAlignment = 16

    /// Input bytes above which a global pool is not split over channels: larger maps (56×56×96 and
    /// up) streamed from L3 measured 1.1–1.3× slower so, smaller ones 0.6–0.85×. Images above it
    /// are split over pixels instead (`globalPoolSplitsPixels`).
    private static let globalPoolSliceBytes = 1 << 20

    /// Slices of channels an NHWC global pool runs as when it has fewer images than threads: one
    /// per thread when each holds a vector of channels and the call is worth splitting, else 1.
    static func globalPoolChannelSlices(batch: Int, channels: Int, spatial: Int, context: KernelContext) -> Int {
        let elements = batch * spatial * channels
        guard batch < context.threads, elements >= 2 * parallelGrain,
              elements * MemoryLayout<Float>.size <= globalPoolSliceBytes else { return 1 }
        return max(1, min(context.threads, channels / globalPoolSliceAlignment))
    }

    /// Bands of pixels a large NHWC global pool splits each image into. Fixed, not one per thread,
    /// and chosen by the image's size alone, so the bits depend neither on the thread count nor on
    /// the batch.
    static let globalPoolPixelBandCount = 2

    /// Whether an image too large to split over channels (`globalPoolSliceBytes`) is pooled in
    /// bands of pixels: the map's top and bottom halves, which the layers before wrote from each
    /// thread's own core, so at batch 1 each thread reads its own cache rather than half of every
    /// pixel from the other's (EfficientNet-B0's 112×112×32 to 56×56×144 pools on Zen 4, two
    /// threads: 45–73 GB/s whole, 100–130 in bands).
    static func globalPoolSplitsPixels(channels: Int, spatial: Int) -> Bool {
        spatial >= globalPoolPixelBandCount && spatial * channels * MemoryLayout<Float>.size > globalPoolSliceBytes
    }

    /// Each band's pool into scratch, then the bands combined in band order.
    private static func globalPoolPixelBands(_ description: keel_pool2d, kernel: keel_pool_rows_fn, average: Bool,
                                             batch: Int, channels: Int, spatial: Int, context: KernelContext) {
        let bands = globalPoolPixelBandCount
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: bands * batch * channels)
        defer { partials.deallocate() }
        func pixels(_ band: Int) -> Range<Int> { spatial * band / bands..<spatial * (band + 1) / bands }
        context.forEachChunk(bands * batch, minimumChunk: 1) { range in
            for item in range {
                let (image, band) = (item / bands, item % bands)
                let span = pixels(band)
                var call = description
                call.input = description.input + (image * spatial + span.lowerBound) * channels
                call.output = partials + item * channels
                call.batch = 1
                call.input_width = span.count
                call.window_width = span.count
                kernel(&call, 0, 1)
            }
        }
        for image in 0..<batch {
            let target = description.output + image * channels
            for band in 0..<bands {
                let partial = partials + (image * bands + band) * channels
                if average {
                    let weight = Float(pixels(band).count) / Float(spatial)
                    if band == 0 {
                        for channel in 0..<channels { target[channel] = partial[channel] * weight }
                    } else {
                        for channel in 0..<channels { target[channel] += partial[channel] * weight }
                    }
                } else if band == 0 {
                    target.update(from: partial, count: channels)
                } else {
                    for channel in 0..<channels { target[channel] = propagatingMax(target[channel], partial[channel]) }
                }
            }
        }
    }

    private static func globalPool(average: Bool, _ input: UnsafeBufferPointer<Float>,
                                   _ output: UnsafeMutableBufferPointer<Float>, _ batch: Int, _ channels: Int,
                                   _ spatial: Int, _ layout: ActivationLayout, _ context: KernelContext) throws {
        let name = average ? "global_avg_pool2d" : "global_max_pool2d"
        try require(batch >= 0 && channels > 0 && spatial > 0, name,
                    "batch \(batch), channels \(channels), spatial \(spatial)")
        try requireCapacity(input.count, try elementCount([batch, channels, spatial], name), name, "input")
        try requireCapacity(output.count, batch * channels, name, "output")
        guard batch > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let scale = 1 / Float(spatial)
        switch layout {
        case .nhwc:
            if let kernel = KernelTable.current.pool_rows {
                // The whole map as one window over a 1×spatial image: one output row per image.
                let whole = Pool2DGeometry(batch: batch, channels: channels, input: Size2D(1, spatial), output: Size2D(1, 1),
                                           window: Size2D(1, spatial), stride: Size2D(1, 1))
                let description = kernelDescription(average ? .average(countIncludePad: false) : .max, whole, source,
                                                    destination)
                if globalPoolSplitsPixels(channels: channels, spatial: spatial) {
                    globalPoolPixelBands(description, kernel: kernel, average: average, batch: batch, channels: channels,
                                         spatial: spatial, context: context)
                    return
                }
                let slices = globalPoolChannelSlices(batch: batch, channels: channels, spatial: spatial, context: context)
                guard slices > 1 else {
                    context.forEachChunk(batch, minimumChunk: max(1, parallelGrain / (spatial * channels))) { range in
                        var call = description
                        kernel(&call, range.lowerBound, range.count)
                    }
                    return
                }
                // Fewer images than threads (batch 1): each thread pools a slice of every pixel's
                // channels. Each channel's sum runs over the same pixels in the same order, so the
                // bits do not depend on the split.
                context.forEachChunk(slices, minimumChunk: 1) { range in
                    for slice in range {
                        let first = channels * slice / slices / globalPoolSliceAlignment * globalPoolSliceAlignment
                        let end = slice + 1 == slices ? channels
                            : channels * (slice + 1) / slices / globalPoolSliceAlignment * globalPoolSliceAlignment
                        guard end > first else { continue }
                        var call = description
                        call.input = UnsafePointer(source + first)
                        call.output = destination + first
                        call.channels = end - first
                        kernel(&call, 0, batch)
                    }
                }
                return
            }
            context.forEachChunk(batch, minimumChunk: max(1, parallelGrain / (spatial * channels))) { range in
                for image in range {
                    let target = destination + image * channels
                    let first = source + image * spatial * channels
                    target.update(from: first, count: channels)
                    for pixel in 1..<max(spatial, 1) {
                        let line = first + pixel * channels
                        if average {
                            for channel in 0..<channels { target[channel] += line[channel] }
                        } else {
                            for channel in 0..<channels { target[channel] = propagatingMax(target[channel], line[channel]) }
                        }
                    }
                    if average { for channel in 0..<channels { target[channel] *= scale } }
                    // As max_pool2d and ONNX Runtime: nothing is below the lowest finite float.
                    if !average { for channel in 0..<channels { target[channel] = propagatingMax(target[channel], lowestPooled) } }
                }
            }
        case .nchw:
            context.forEachChunk(batch * channels, minimumChunk: max(1, parallelGrain / spatial)) { range in
                for plane in range {
                    let line = source + plane * spatial
                    var value = line[0]
                    if average {
                        for index in 1..<max(spatial, 1) { value += line[index] }
                        value *= scale
                    } else {
                        for index in 1..<max(spatial, 1) { value = propagatingMax(value, line[index]) }
                        value = propagatingMax(value, lowestPooled)
                    }
                    destination[plane] = value
                }
            }
        }
    }
}
