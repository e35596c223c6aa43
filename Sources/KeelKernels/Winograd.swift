/// Winograd F(4×4, 3×3) convolution for 3×3, stride-1 layers, which are most of a VGG's work.
/// The output is cut into 4×4 tiles over the whole batch; a block of tiles is transformed into
/// 36 [tiles, inputChannels] matrices, multiplied by the 36 transformed filters (36 GEMMs, a quarter
/// of im2col's multiplies), and transformed back with the bias and activation applied while each
/// output tile is still in cache. Both layouts share the transforms: NCHW tiles are gathered into
/// a channels-last patch first.
import COpenBLAS

enum Winograd {
    /// Floats the transformed inputs and products of a block may use (4 MiB) when that leaves at
    /// least `minimumBlockTiles` tiles: wide layers get bigger blocks, all within the last-level cache.
    static let blockBudget = 1 << 20
    /// Every GEMM repacks its transformed filter (inputChannels × outputChannels), so blocks need
    /// enough tiles to amortise that; 128 measured best on VGG16's 512-channel layers.
    static let minimumBlockTiles = 128
    static let maximumBlockTiles = 1024

    /// 3×3, stride 1, no dilation, one group.
    static func supports(_ geometry: Conv2DGeometry) -> Bool {
        geometry.kernel == Size2D(3, 3) && geometry.stride == .one && geometry.dilation == .one && geometry.groups == 1
    }

    static func tileRows(_ geometry: Conv2DGeometry) -> Int { (geometry.output.height + 3) / 4 }
    static func tileColumns(_ geometry: Conv2DGeometry) -> Int { (geometry.output.width + 3) / 4 }
    static func tileCount(_ geometry: Conv2DGeometry) -> Int {
        geometry.batch * tileRows(geometry) * tileColumns(geometry)
    }

    static func blockTiles(_ geometry: Conv2DGeometry) -> Int {
        let perTile = 36 * (geometry.inputChannels + geometry.outputChannels)
        let budgeted = min(maximumBlockTiles, max(minimumBlockTiles, blockBudget / max(perTile, 1)))
        return max(1, min(tileCount(geometry), budgeted))
    }

    static func scratchSize(for geometry: Conv2DGeometry) -> Int {
        36 * blockTiles(geometry) * (geometry.inputChannels + geometry.outputChannels)
    }
}

/// One validated Winograd call.
struct WinogradRun {
    let input: UnsafePointer<Float>
    let weights: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let activation: UnaryOperation
    let output: UnsafeMutablePointer<Float>
    let geometry: Conv2DGeometry
    let scratch: UnsafeMutablePointer<Float>
    let context: KernelContext

    var inputChannels: Int { geometry.inputChannels }
    var outputChannels: Int { geometry.outputChannels }

    func run() {
        let total = Winograd.tileCount(geometry)
        let block = Winograd.blockTiles(geometry)
        let transformed = scratch
        let products = scratch + 36 * block * inputChannels
        for start in stride(from: 0, to: total, by: block) {
            let count = min(block, total - start)
            let tileGrain = max(1, parallelGrain / (36 * inputChannels))
            context.forEachChunk(count, minimumChunk: tileGrain) { tiles in
                transformInputs(tiles, blockStart: start, blockCount: count, destination: transformed)
            }
            // One single-threaded GEMM per point, points split across threads: small late-layer
            // blocks keep every GEMM whole instead of splitting each one across threads.
            context.forEachChunk(36, minimumChunk: 1) { points in
                for point in points {
                    sgemm(transposeA: false, transposeB: false, m: count, n: outputChannels, k: inputChannels,
                          a: transformed + point * count * inputChannels, lda: inputChannels,
                          b: weights + point * inputChannels * outputChannels, ldb: outputChannels,
                          c: products + point * count * outputChannels, ldc: outputChannels,
                          context: .singleThreaded)
                }
            }
            context.forEachChunk(count, minimumChunk: max(1, parallelGrain / (36 * outputChannels))) { tiles in
                transformOutputs(tiles, blockStart: start, blockCount: count, source: products)
            }
        }
    }

    /// Where tile `tile` (counted over the batch) starts: image, first output row and column.
    func origin(_ tile: Int) -> (image: Int, row: Int, column: Int) {
        let rows = Winograd.tileRows(geometry)
        let columns = Winograd.tileColumns(geometry)
        let image = tile / (rows * columns)
        let within = tile - image * rows * columns
        return (image, (within / columns) * 4, (within % columns) * 4)
    }

    func transformInputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, destination: UnsafeMutablePointer<Float>) {
        let channels = inputChannels
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 36 * channels + 36 * 8) { buffer in
            guard let patch = buffer.baseAddress else { return }
            let temporary = patch + 36 * channels
            for local in tiles {
                let (image, row, column) = origin(blockStart + local)
                let (source, rowStride) = gather(image: image, top: row - geometry.padding.top,
                                                 left: column - geometry.padding.left, patch: patch)
                let target = destination + local * channels
                let pointStride = blockCount * channels
                var channel = 0
                while channel + 8 <= channels {
                    WinogradTransform.inputTile(SIMD8<Float>.self, source: source + channel, rowStride: rowStride,
                                                columnStride: channels, destination: target + channel,
                                                pointStride: pointStride, temporary: temporary)
                    channel += 8
                }
                while channel < channels {
                    WinogradTransform.inputTile(Float.self, source: source + channel, rowStride: rowStride,
                                                columnStride: channels, destination: target + channel,
                                                pointStride: pointStride, temporary: temporary)
                    channel += 1
                }
            }
        }
    }

    /// The 6×6×channels input patch at (top, left) as a channels-last view: read in place for an
    /// interior NHWC tile, otherwise copied into `patch` with zeros for the padding.
    func gather(image: Int, top: Int, left: Int, patch: UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int) {
        let (height, width, channels) = (geometry.input.height, geometry.input.width, inputChannels)
        let interior = top >= 0 && left >= 0 && top + 6 <= height && left + 6 <= width
        switch geometry.layout {
        case .nhwc:
            if interior {
                return (input + ((image * height + top) * width + left) * channels, width * channels)
            }
            for row in 0..<6 {
                for column in 0..<6 {
                    let destination = patch + (row * 6 + column) * channels
                    let (y, x) = (top + row, left + column)
                    if y >= 0 && y < height && x >= 0 && x < width {
                        destination.update(from: input + ((image * height + y) * width + x) * channels, count: channels)
                    } else {
                        destination.update(repeating: 0, count: channels)
                    }
                }
            }
        case .nchw:
            if !interior { patch.update(repeating: 0, count: 36 * channels) }
            let rows = max(0, -top)..<min(6, height - top)
            let columns = max(0, -left)..<min(6, width - left)
            let planeSize = height * width
            for channel in 0..<channels {
                let plane = input + (image * channels + channel) * planeSize
                for row in rows {
                    let line = plane + (top + row) * width + left
                    for column in columns {
                        patch[(row * 6 + column) * channels + channel] = line[column]
                    }
                }
            }
        }
        return (UnsafePointer(patch), 6 * channels)
    }

    func transformOutputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, source: UnsafePointer<Float>) {
        let channels = outputChannels
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * channels + 24 * 8) { buffer in
            guard let staging = buffer.baseAddress else { return }
            let temporary = staging + 16 * channels
            let pointStride = blockCount * channels
            for local in tiles {
                let products = source + local * channels
                var channel = 0
                while channel + 8 <= channels {
                    let bias = self.bias.map { SIMD8<Float>(loadingFrom: $0 + channel) } ?? SIMD8<Float>()
                    WinogradTransform.outputTile(SIMD8<Float>.self, source: products + channel, pointStride: pointStride,
                                                 bias: bias, destination: staging + channel, outputStride: channels,
                                                 temporary: temporary)
                    channel += 8
                }
                while channel < channels {
                    WinogradTransform.outputTile(Float.self, source: products + channel, pointStride: pointStride,
                                                 bias: self.bias?[channel] ?? 0, destination: staging + channel,
                                                 outputStride: channels, temporary: temporary)
                    channel += 1
                }
                if activation != .identity {
                    activation.accept(InPlaceMap(values: staging, count: 16 * channels))
                }
                scatter(staging, tile: blockStart + local)
            }
        }
    }

    /// Copies the valid part of a 4×4×channels staged tile into the output.
    func scatter(_ staging: UnsafePointer<Float>, tile: Int) {
        let (image, top, left) = origin(tile)
        let (height, width, channels) = (geometry.output.height, geometry.output.width, outputChannels)
        let rows = min(4, height - top)
        let columns = min(4, width - left)
        switch geometry.layout {
        case .nhwc:
            for row in 0..<rows {
                let line = output + ((image * height + top + row) * width + left) * channels
                line.update(from: staging + row * 4 * channels, count: columns * channels)
            }
        case .nchw:
            let planeSize = height * width
            for channel in 0..<channels {
                let plane = output + (image * channels + channel) * planeSize + top * width + left
                for row in 0..<rows {
                    for column in 0..<columns {
                        plane[row * width + column] = staging[(row * 4 + column) * channels + channel]
                    }
                }
            }
        }
    }
}

/// Applies an activation to a contiguous run of values in place.
private struct InPlaceMap: ElementFunctionVisitor {
    let values: UnsafeMutablePointer<Float>
    let count: Int

    func visit<Function: ElementFunction>(_ function: Function) {
        mapElements(function, values, values, count)
    }
}
