/// Resizing with the triangle ("bilinear") filter exactly as Pillow's `Image.resize(size,
/// Image.BILINEAR)` computes it on float images: the filter's support widens with the downscale
/// factor, so shrinking averages every source pixel (antialiasing) instead of sampling four.
/// This is also what torchvision's `Resize` does to PIL images, so a model trained on either sees
/// the same pixels. Results stay unrounded floats in 0...255: rounding to bytes would only add error.
///
/// For each output index `o` along an axis of `n` inputs resized to `m`:
///   scale = n / m, support = max(scale, 1), centre = (o + 0.5) * scale,
///   taps i in [trunc(centre - support + 0.5), trunc(centre + support + 0.5)) clipped to [0, n),
///   weight(i) = max(0, 1 - |i + 0.5 - centre| / support), normalised to sum to 1.
/// Rows are resized first, into float32, then columns — Pillow's order, which fixes the rounding.
struct ResampleAxis {
    /// First input index contributing to each output index.
    let first: [Int]
    /// Weights of each output index, `stride` per output, zero-padded.
    let weights: [Double]
    let counts: [Int]
    let stride: Int

    init(inputSize: Int, outputSize: Int) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filterScale
        let reciprocalScale = 1 / filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outputSize)
        var counts = [Int](repeating: 0, count: outputSize)
        var weights = [Double](repeating: 0, count: outputSize * stride)
        for output in 0..<outputSize {
            let centre = (Double(output) + 0.5) * scale
            let low = max(0, Int(centre - support + 0.5))
            let high = min(inputSize, Int(centre + support + 0.5))
            let count = min(max(high - low, 0), stride)
            var total = 0.0
            for tap in 0..<count {
                let distance = abs((Double(tap + low) - centre + 0.5) * reciprocalScale)
                let weight = distance < 1 ? 1 - distance : 0
                weights[output * stride + tap] = weight
                total += weight
            }
            if total != 0 {
                for tap in 0..<count { weights[output * stride + tap] /= total }
            }
            first[output] = low
            counts[output] = count
        }
        self.first = first
        self.weights = weights
        self.counts = counts
        self.stride = stride
    }
}

extension Image {
    /// The image resized to `width`×`height` (see `ResampleAxis`), as interleaved RGB floats in
    /// 0...255, rows top to bottom. Sizes must be positive.
    public func resampled(width outputWidth: Int, height outputHeight: Int) -> [Float] {
        precondition(outputWidth > 0 && outputHeight > 0, "resampled(width:height:) needs a positive size")
        // Pass 1: each source row to the output width (skipped when the width already matches).
        var rows = [Float](repeating: 0, count: height * outputWidth * 3)
        if outputWidth == width {
            for index in 0..<pixels.count { rows[index] = Float(pixels[index]) }
        } else {
            let axis = ResampleAxis(inputSize: width, outputSize: outputWidth)
            pixels.withUnsafeBufferPointer { source in
                rows.withUnsafeMutableBufferPointer { target in
                    for y in 0..<height {
                        let sourceRow = y * width * 3, targetRow = y * outputWidth * 3
                        for x in 0..<outputWidth {
                            var red = 0.0, green = 0.0, blue = 0.0
                            let base = x * axis.stride
                            for tap in 0..<axis.counts[x] {
                                let weight = axis.weights[base + tap]
                                let offset = sourceRow + (axis.first[x] + tap) * 3
                                red += Double(source[offset]) * weight
                                green += Double(source[offset + 1]) * weight
                                blue += Double(source[offset + 2]) * weight
                            }
                            target[targetRow + x * 3] = Float(red)
                            target[targetRow + x * 3 + 1] = Float(green)
                            target[targetRow + x * 3 + 2] = Float(blue)
                        }
                    }
                }
            }
        }
        // Pass 2: columns to the output height.
        guard outputHeight != height else { return rows }
        let axis = ResampleAxis(inputSize: height, outputSize: outputHeight)
        let rowLength = outputWidth * 3
        var result = [Float](repeating: 0, count: outputHeight * rowLength)
        // Whole rows are accumulated tap by tap, so reads run along memory; each value still
        // sums its taps in order from 0.0, as Pillow does.
        var sums = [Double](repeating: 0, count: rowLength)
        rows.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                for y in 0..<outputHeight {
                    for column in 0..<rowLength { sums[column] = 0 }
                    for tap in 0..<axis.counts[y] {
                        let weight = axis.weights[y * axis.stride + tap]
                        let sourceRow = (axis.first[y] + tap) * rowLength
                        for column in 0..<rowLength { sums[column] += Double(source[sourceRow + column]) * weight }
                    }
                    for column in 0..<rowLength { target[y * rowLength + column] = Float(sums[column]) }
                }
            }
        }
        return result
    }
}
