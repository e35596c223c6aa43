/// im2col over a bounded tile of output pixels. Materialising the whole column matrix of a large
/// layer (224×224 pixels × 576 taps = 115 MB) would dwarf the activations, so convolution walks the
/// output in tiles whose column buffer fits a fixed budget and reuses one scratch buffer.

enum Im2Col {
    /// Floats of column buffer a tile may use (2 MiB): large enough for efficient GEMMs,
    /// small enough to stay near the cache and out of the memory plan's way.
    static let columnBudget = 1 << 19
    /// Tiles never shrink below this many pixels, so very deep kernels still give GEMMs some rows.
    static let minimumTilePixels = 32

    /// Output pixels per tile for a GEMM of reduction length `reduction` over `pixels` pixels.
    /// A column matrix within twice the budget is one tile: each tile streams the whole filter
    /// from memory, and for VGG16's 14×14 layers at batch 1 (196 pixels × 4608 taps) a second
    /// pass over 9 MB of filter cost more than the extra 1.6 MB of buffer.
    static func tilePixels(reduction: Int, pixels: Int) -> Int {
        if pixels > 0, pixels <= 2 * columnBudget / max(reduction, 1) {
            return pixels
        }
        return max(1, min(pixels, max(minimumTilePixels, columnBudget / max(reduction, 1))))
    }

    /// NHWC: fills `columns` (row-major [pixelCount, K]) for `pixelCount` pixels from `pixelStart`,
    /// `pixelStep` apart (a column of the output with the output's width), counted over batch ×
    /// outputHeight × outputWidth, for the input channels of `group`.
    static func fillNHWC(input: UnsafePointer<Float>, geometry: Conv2DGeometry, group: Int,
                         pixelStart: Int, pixelCount: Int, pixelStep: Int = 1, columns: UnsafeMutablePointer<Float>,
                         context: KernelContext) {
        let reduction = geometry.reductionLength
        let output = geometry.output
        let channelsPerGroup = geometry.inputChannelsPerGroup
        let channelOffset = group * channelsPerGroup
        let (height, width, channels) = (geometry.input.height, geometry.input.width, geometry.inputChannels)
        let (kernel, stride, dilation, padding) = (geometry.kernel, geometry.stride, geometry.dilation, geometry.padding)
        context.forEachChunk(pixelCount, minimumChunk: max(1, parallelGrain / reduction)) { range in
            for local in range {
                let pixel = pixelStart + local * pixelStep
                let image = pixel / (output.height * output.width)
                let within = pixel - image * output.height * output.width
                let outputRow = within / output.width
                let outputColumn = within - outputRow * output.width
                var destination = columns + local * reduction
                for kernelRow in 0..<kernel.height {
                    let inputRow = outputRow * stride.height - padding.top + kernelRow * dilation.height
                    guard inputRow >= 0 && inputRow < height else {
                        destination.update(repeating: 0, count: kernel.width * channelsPerGroup)
                        destination += kernel.width * channelsPerGroup
                        continue
                    }
                    let rowBase = input + ((image * height + inputRow) * width) * channels + channelOffset
                    for kernelColumn in 0..<kernel.width {
                        let inputColumn = outputColumn * stride.width - padding.left + kernelColumn * dilation.width
                        if inputColumn >= 0 && inputColumn < width {
                            destination.update(from: rowBase + inputColumn * channels, count: channelsPerGroup)
                        } else {
                            destination.update(repeating: 0, count: channelsPerGroup)
                        }
                        destination += channelsPerGroup
                    }
                }
            }
        }
    }

    /// NCHW: fills `columns` (row-major [K, pixelCount]) for pixels `pixelStart..<pixelStart+pixelCount`
    /// of one image, for the input channels of `group`.
    static func fillNCHW(input: UnsafePointer<Float>, geometry: Conv2DGeometry, image: Int, group: Int,
                         pixelStart: Int, pixelCount: Int, columns: UnsafeMutablePointer<Float>,
                         context: KernelContext) {
        let output = geometry.output
        let channelsPerGroup = geometry.inputChannelsPerGroup
        let (height, width) = (geometry.input.height, geometry.input.width)
        let (kernel, stride, dilation, padding) = (geometry.kernel, geometry.stride, geometry.dilation, geometry.padding)
        let imageBase = input + (image * geometry.inputChannels + group * channelsPerGroup) * height * width
        context.forEachChunk(geometry.reductionLength, minimumChunk: max(1, parallelGrain / pixelCount)) { rows in
            for k in rows {
                let channel = k % channelsPerGroup
                let tap = k / channelsPerGroup
                let kernelRow = tap / kernel.width
                let kernelColumn = tap - kernelRow * kernel.width
                let plane = imageBase + channel * height * width
                var destination = columns + k * pixelCount
                // Walk the tile one output row segment at a time; within a segment the valid output
                // columns form one range, so padding is a fill and stride 1 is a plain copy.
                let columnOffset = kernelColumn * dilation.width - padding.left
                let firstValid = columnOffset >= 0 ? 0 : (-columnOffset + stride.width - 1) / stride.width
                let lastValid = width - 1 - columnOffset < 0 ? -1 : (width - 1 - columnOffset) / stride.width
                var pixel = pixelStart
                let end = pixelStart + pixelCount
                while pixel < end {
                    let outputRow = pixel / output.width
                    let segmentStart = pixel - outputRow * output.width
                    let segmentEnd = min(output.width, segmentStart + (end - pixel))
                    let segment = segmentEnd - segmentStart
                    let inputRow = outputRow * stride.height - padding.top + kernelRow * dilation.height
                    if inputRow < 0 || inputRow >= height {
                        destination.update(repeating: 0, count: segment)
                    } else {
                        let line = plane + inputRow * width + columnOffset
                        let validStart = min(max(firstValid, segmentStart), segmentEnd)
                        let validEnd = max(min(lastValid + 1, segmentEnd), validStart)
                        destination.update(repeating: 0, count: validStart - segmentStart)
                        let valid = destination + (validStart - segmentStart)
                        if stride.width == 1 {
                            valid.update(from: line + validStart, count: validEnd - validStart)
                        } else {
                            for column in validStart..<validEnd {
                                valid[column - validStart] = line[column * stride.width]
                            }
                        }
                        (destination + (validEnd - segmentStart)).update(repeating: 0, count: segmentEnd - validEnd)
                    }
                    destination += segment
                    pixel += segment
                }
            }
        }
    }
}
