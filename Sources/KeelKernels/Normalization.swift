/// Inference-time normalisation. BatchNorm folds its four parameter vectors into one scale and
/// one shift per channel once (at load time), leaving a single multiply-add per element; the
/// (outer, channels, inner) extents cover NHWC (inner = 1), NCHW (inner = H·W) and dense rows.
/// LayerNorm normalises each row of `normSize` trailing elements with two passes over the row
/// (vectorised in CSIMDKernels/row_kernels.h where the CPU allows).
import CSIMDKernels
import Foundation

public enum BatchNorm {
    /// Channels-last tensors with fewer channels than this run as flat periodic blocks.
    static let periodicChannelLimit = 16

    /// scale = gamma / sqrt(variance + epsilon), shift = beta - mean · scale, for `channels` values.
    public static func foldScaleShift(gamma: UnsafeBufferPointer<Float>, beta: UnsafeBufferPointer<Float>,
                                      mean: UnsafeBufferPointer<Float>, variance: UnsafeBufferPointer<Float>,
                                      epsilon: Float, channels: Int, scale: UnsafeMutableBufferPointer<Float>,
                                      shift: UnsafeMutableBufferPointer<Float>) throws {
        let name = "batch_norm"
        try require(channels >= 0, name, "negative channel count \(channels)")
        for (buffer, label) in [(gamma, "gamma"), (beta, "beta"), (mean, "moving_mean"), (variance, "moving_variance")] {
            try requireCapacity(buffer.count, channels, name, label)
        }
        try requireCapacity(scale.count, channels, name, "scale")
        try requireCapacity(shift.count, channels, name, "shift")
        for channel in 0..<channels {
            let factor = gamma[channel] / (variance[channel] + epsilon).squareRoot()
            scale[channel] = factor
            shift[channel] = beta[channel] - mean[channel] * factor
        }
    }

    /// output = activation(input · scale[c] + shift[c]) over a tensor viewed as [outer, channels,
    /// inner]. The activation runs on each block of rows right after its scale and shift, while the
    /// block is still in L1, instead of as a pass of its own. In-place use is allowed.
    /// `inputRowStride` (elements between the input's `outer` rows; channels × inner when nil)
    /// reads a slice of a wider buffer, as a concatenation's prefix is (`ConcatPlacement`).
    public static func apply(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                             scale: UnsafeBufferPointer<Float>, shift: UnsafeBufferPointer<Float>,
                             outer: Int, channels: Int, inner: Int, activation: UnaryOperation = .identity,
                             inputRowStride: Int? = nil, context: KernelContext = .singleThreaded) throws {
        let name = "batch_norm"
        let count = try elementCount([outer, channels, inner], name)
        let rowStride = inputRowStride ?? channels * inner
        try require(rowStride >= channels * inner, name, "input row stride \(rowStride) below a row of \(channels * inner)")
        try requireCapacity(input.count, count == 0 ? 0 : (outer - 1) * rowStride + channels * inner, name, "input")
        try requireCapacity(output.count, count, name, "output")
        try requireCapacity(scale.count, channels, name, "scale")
        try requireCapacity(shift.count, channels, name, "shift")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let scales = scale.baseAddress, let shifts = shift.baseAddress else { return }
        // Rows (inner == 1: one pixel's channels; else one channel's plane) per block of 32 KB.
        let rowLength = inner == 1 ? channels : inner
        let blockRows = max(1, 8192 / rowLength)
        func activate(_ rows: Range<Int>) {
            guard activation != .identity else { return }
            let block = OutputBlock(base: destination + rows.lowerBound * rowLength, rows: rows.count, columns: rowLength,
                                    rowStride: rowLength)
            applyEpilogue(block, bias: nil, direction: .perColumn, activation: activation, context: .singleThreaded)
        }
        if inner == 1 && rowStride == channels && channels < periodicChannelLimit {
            // An image's three channels: a pixel's loop is too short to vectorise, so scale and
            // shift repeat over lcm(channels, 16) values and the tensor runs as flat blocks of them.
            var period = 16
            while period % channels != 0 { period += 16 }
            let pixelsPerPeriod = period / channels
            var periodic = [Float](repeating: 0, count: 2 * period)
            for index in 0..<period {
                periodic[index] = scales[index % channels]
                periodic[period + index] = shifts[index % channels]
            }
            periodic.withUnsafeBufferPointer { periodic in
                guard let periodicScale = periodic.baseAddress else { return }
                let periodicShift = periodicScale + period
                context.forEachChunk((outer + pixelsPerPeriod - 1) / pixelsPerPeriod,
                                     minimumChunk: max(1, parallelGrain / period)) { periods in
                    let rows = periods.lowerBound * pixelsPerPeriod..<min(outer, periods.upperBound * pixelsPerPeriod)
                    for first in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
                        let block = first..<min(first + blockRows, rows.upperBound)
                        var index = block.lowerBound * channels
                        let end = block.upperBound * channels
                        while index < end {
                            let length = min(period, end - index)
                            let (from, to) = (source + index, destination + index)
                            for offset in 0..<length { to[offset] = from[offset] * periodicScale[offset] + periodicShift[offset] }
                            index += length
                        }
                        activate(block)
                    }
                }
            }
        } else if inner == 1 {
            context.forEachChunk(outer, minimumChunk: max(1, parallelGrain / channels)) { rows in
                for first in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
                    let block = first..<min(first + blockRows, rows.upperBound)
                    for row in block {
                        let from = source + row * rowStride
                        let to = destination + row * channels
                        for channel in 0..<channels { to[channel] = from[channel] * scales[channel] + shifts[channel] }
                    }
                    activate(block)
                }
            }
        } else {
            context.forEachChunk(outer * channels, minimumChunk: max(1, parallelGrain / inner)) { planes in
                for first in stride(from: planes.lowerBound, to: planes.upperBound, by: blockRows) {
                    let block = first..<min(first + blockRows, planes.upperBound)
                    for plane in block {
                        let channel = plane % channels
                        let (factor, offset) = (scales[channel], shifts[channel])
                        let from = source + plane / channels * rowStride + channel * inner
                        let to = destination + plane * inner
                        for index in 0..<inner { to[index] = from[index] * factor + offset }
                    }
                    activate(block)
                }
            }
        }
    }
}

public enum LayerNorm {
    /// Each of `rows` rows of `normSize` elements becomes (x - mean) / sqrt(var + epsilon) · gamma + beta.
    /// `gamma` and `beta` hold `normSize` values. In-place use is allowed. When given, `mean` and
    /// `inverseDeviation` receive each row's mean and 1 / sqrt(var + epsilon) (`rows` values each),
    /// the statistics ONNX LayerNormalization can output for training.
    public static func apply(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                             rows: Int, normSize: Int, gamma: UnsafeBufferPointer<Float>,
                             beta: UnsafeBufferPointer<Float>? = nil, epsilon: Float,
                             mean: UnsafeMutableBufferPointer<Float>? = nil,
                             inverseDeviation: UnsafeMutableBufferPointer<Float>? = nil,
                             context: KernelContext = .singleThreaded) throws {
        let name = "layer_norm"
        try require(normSize > 0, name, "normalised size \(normSize) must be positive")
        let count = try elementCount([rows, normSize], name)
        try requireCapacity(input.count, count, name, "input")
        try requireCapacity(output.count, count, name, "output")
        try requireCapacity(gamma.count, normSize, name, "gamma")
        if let beta { try requireCapacity(beta.count, normSize, name, "beta") }
        if let mean { try requireCapacity(mean.count, rows, name, "mean") }
        if let inverseDeviation { try requireCapacity(inverseDeviation.count, rows, name, "inverse deviation") }
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let scales = gamma.baseAddress else { return }
        let shifts = beta?.baseAddress
        let means = mean?.baseAddress
        let inverseDeviations = inverseDeviation?.baseAddress
        if let kernel = KernelTable.current.layer_norm_rows {
            context.forEachChunk(rows, minimumChunk: max(1, parallelGrain / normSize)) { range in
                let offset = range.lowerBound * normSize
                kernel(range.count, normSize, source + offset, destination + offset, scales, shifts, epsilon,
                       means.map { $0 + range.lowerBound }, inverseDeviations.map { $0 + range.lowerBound })
            }
            return
        }
        let inverseSize = 1 / Float(normSize)
        context.forEachChunk(rows, minimumChunk: max(1, parallelGrain / normSize)) { range in
            for row in range {
                let from = source + row * normSize
                let to = destination + row * normSize
                var sum: Float = 0
                for index in 0..<normSize { sum += from[index] }
                let mean = sum * inverseSize
                var squares: Float = 0
                for index in 0..<normSize {
                    let centred = from[index] - mean
                    squares += centred * centred
                }
                let inverseDeviation = 1 / (squares * inverseSize + epsilon).squareRoot()
                means?[row] = mean
                inverseDeviations?[row] = inverseDeviation
                if let shifts {
                    for index in 0..<normSize {
                        to[index] = (from[index] - mean) * inverseDeviation * scales[index] + shifts[index]
                    }
                } else {
                    for index in 0..<normSize { to[index] = (from[index] - mean) * inverseDeviation * scales[index] }
                }
            }
        }
    }
}

public enum InstanceNorm {
    /// Normalises each image's channels over its other axes: the tensor is viewed as
    /// [batch, before, channels, after] (NCHW: before = 1, after = H·W; NHWC: before = H·W,
    /// after = 1), and every (image, channel) pair becomes
    /// (x - mean) / sqrt(var + epsilon) · gamma[c] + beta[c]. In-place use is allowed.
    public static func apply(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                             batch: Int, before: Int, channels: Int, after: Int,
                             gamma: UnsafeBufferPointer<Float>, beta: UnsafeBufferPointer<Float>, epsilon: Float,
                             context: KernelContext = .singleThreaded) throws {
        let name = "instance_norm"
        try require(batch >= 0 && before >= 0 && channels >= 0 && after >= 0, name, "negative extent")
        let count = try elementCount([batch, before, channels, after], name)
        try requireCapacity(input.count, count, name, "input")
        try requireCapacity(output.count, count, name, "output")
        try requireCapacity(gamma.count, channels, name, "gamma")
        try requireCapacity(beta.count, channels, name, "beta")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress,
              let scales = gamma.baseAddress, let shifts = beta.baseAddress else { return }
        let inverseSize = 1 / Float(before * after)
        let rowStride = channels * after
        if before == 1 {
            // Planes (NCHW, or GroupNorm's groups exported as one channel): vector sums, and a plane
            // split across threads when there are fewer planes than threads (PoolFormer's
            // GroupNorm(1) is one plane of 200704 values per image).
            for pair in 0..<(batch * channels) {
                let channel = pair % channels
                let (from, to) = (source + pair * after, destination + pair * after)
                let mean = Float(partialSums(after, context) { contiguousSum(from + $0.lowerBound, $0.count) }) * inverseSize
                let squares = Float(partialSums(after, context) { centredSquares(from + $0.lowerBound, $0.count, mean) })
                let factor = scales[channel] / (squares * inverseSize + epsilon).squareRoot()
                let offset = shifts[channel] - mean * factor
                context.forEachChunk(after, minimumChunk: parallelGrain) { range in
                    for index in range { to[index] = from[index] * factor + offset }
                }
            }
            return
        }
        context.forEachChunk(batch * channels, minimumChunk: max(1, parallelGrain / (before * after))) { pairs in
            for pair in pairs {
                let (image, channel) = pair.quotientAndRemainder(dividingBy: channels)
                let from = source + image * before * rowStride + channel * after
                let to = destination + image * before * rowStride + channel * after
                var sum: Float = 0
                for row in 0..<before { for index in 0..<after { sum += from[row * rowStride + index] } }
                let mean = sum * inverseSize
                var squares: Float = 0
                for row in 0..<before {
                    for index in 0..<after {
                        let centred = from[row * rowStride + index] - mean
                        squares += centred * centred
                    }
                }
                let factor = scales[channel] / (squares * inverseSize + epsilon).squareRoot()
                let offset = shifts[channel] - mean * factor
                for row in 0..<before {
                    for index in 0..<after { to[row * rowStride + index] = from[row * rowStride + index] * factor + offset }
                }
            }
        }
    }
}

/// Σ body(range) over `count` elements cut into one range per thread (one range when small).
private func partialSums(_ count: Int, _ context: KernelContext, _ body: (Range<Int>) -> Float) -> Double {
    let parts = max(1, min(context.threads, count / parallelGrain))
    guard parts > 1 else { return Double(body(0..<count)) }
    var partials = [Double](repeating: 0, count: parts)
    partials.withUnsafeMutableBufferPointer { results in
        context.forEachChunk(parts, minimumChunk: 1) { indices in
            for part in indices { results[part] = Double(body((count * part / parts)..<(count * (part + 1) / parts))) }
        }
    }
    return partials.reduce(0, +)
}

/// Σ from[0..<count], in sixteen lanes (a Float loop keeps its order and does not vectorise).
private func contiguousSum(_ from: UnsafePointer<Float>, _ count: Int) -> Float {
    var lanes = SIMD16<Float>()
    var index = 0
    while index + 16 <= count {
        lanes += UnsafeRawPointer(from + index).loadUnaligned(as: SIMD16<Float>.self)
        index += 16
    }
    var total = lanes.sumByHalves
    while index < count {
        total += from[index]
        index += 1
    }
    return total
}

/// Σ (from[i] − mean)² over `count` elements, in sixteen lanes.
private func centredSquares(_ from: UnsafePointer<Float>, _ count: Int, _ mean: Float) -> Float {
    var lanes = SIMD16<Float>()
    let centre = SIMD16<Float>(repeating: mean)
    var index = 0
    while index + 16 <= count {
        let centred = UnsafeRawPointer(from + index).loadUnaligned(as: SIMD16<Float>.self) - centre
        lanes += centred * centred
        index += 16
    }
    var total = lanes.sumByHalves
    while index < count {
        let centred = from[index] - mean
        total += centred * centred
        index += 1
    }
    return total
}

public enum LocalResponseNorm {
    /// Local response normalisation across channels (ONNX LRN) over a tensor viewed as
    /// [outer, channels, inner]: y = x / (bias + alpha/size · Σ x²)^beta, the sum running over
    /// channels c - ⌊(size-1)/2⌋ ... c + ⌈(size-1)/2⌉ that exist. Not in place.
    public static func apply(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                             outer: Int, channels: Int, inner: Int, size: Int, alpha: Float, beta: Float, bias: Float,
                             context: KernelContext = .singleThreaded) throws {
        let name = "lrn"
        try require(size >= 1 && outer >= 0 && channels >= 0 && inner >= 0, name,
                    "size \(size), extents \(outer)×\(channels)×\(inner)")
        let count = try elementCount([outer, channels, inner], name)
        try requireCapacity(input.count, count, name, "input")
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        try require(source != UnsafePointer(destination), name, "input and output must not overlap")
        let (before, after) = ((size - 1) / 2, size / 2)
        let scale = alpha / Float(size)
        context.forEachChunk(outer * channels, minimumChunk: max(1, parallelGrain / (inner * size))) { lines in
            for line in lines {
                let (block, channel) = line.quotientAndRemainder(dividingBy: channels)
                let first = max(0, channel - before)
                let last = min(channels - 1, channel + after)
                let base = block * channels * inner
                for index in 0..<inner {
                    var squares: Float = 0
                    for neighbour in first...last {
                        let value = source[base + neighbour * inner + index]
                        squares += value * value
                    }
                    let position = base + channel * inner + index
                    destination[position] = source[position] / Foundation.pow(bias + scale * squares, beta)
                }
            }
        }
    }
}
