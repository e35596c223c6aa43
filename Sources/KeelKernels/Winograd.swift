/// Winograd F(4×4, 3×3) convolution for 3×3, stride-1 layers, which are most of a VGG's work.
/// The output is cut into 4×4 tiles over the whole batch; a block of tiles is transformed into
/// 36 [tiles, inputChannels] matrices, multiplied by the 36 transformed filters (36 GEMMs, a quarter
/// of im2col's multiplies), and transformed back with the bias and activation applied while each
/// output tile is still in cache. Both layouts share the transforms, which run over channels:
/// NCHW input and output rows pass through small channels-last bands, a tile row at a time.
/// The per-tile transforms run in CSIMDKernels when the CPU has a SIMD level, in Swift otherwise.
import CSIMDKernels

enum Winograd {
    /// Floats the transformed inputs and products of a block may use (4 MiB) when that leaves at
    /// least `minimumBlockTiles` tiles: wide layers get bigger blocks, all within the last-level cache.
    static let blockBudget = 1 << 20
    /// Set when every GEMM repacked its filter through OpenBLAS and blocks had to amortise that.
    /// With the filters packed once in panels, 32- and 64-tile minimums measured the same within
    /// this machine's noise; the value also decides which layers get a pipeline per thread.
    static let minimumBlockTiles = 192
    static let maximumBlockTiles = 1024

    /// 3×3, stride 1, no dilation, one group.
    static func supports(_ geometry: Conv2DGeometry) -> Bool {
        geometry.kernel == Size2D(3, 3) && geometry.stride == .one && geometry.dilation == .one && geometry.groups == 1
    }

    /// Whether Winograd should beat im2col on a layer it supports, by cost. Per filter element
    /// im2col multiplies 9·pixels times and Winograd 36·tiles times (ragged edge tiles count
    /// whole), but Winograd streams a filter 4× as large, which at batch 1 comes from memory
    /// each run: it pays once the multiplies saved, 9·pixels − 36·tiles, reach
    /// `minimumSavedMultiplies`. Measured per layer both ways (batch 1 and 8): 14×14 layers at
    /// batch 1 (score 1188) ran 2–4× faster on Winograd with 256 or 512 channels and level with
    /// 128→32; 7×7 and 8×8 ones (297, 432) 1.5–3× slower; 7×7 at batch 8 (2376) 3× faster. Both
    /// sides need enough channels for the transforms to cost less than the multiplies they save.
    ///
    /// The transformed filter also stays resident in place of the 3×3 one, 27·inputs·outputs floats
    /// more: 28 MB for a 512→512 layer, which on VGG16's three 14×14 layers at batch 1 took peak
    /// RSS from 196 to 281 MB. A layer whose filter would grow by more than `filterGrowthBudget`
    /// needs `largeFilterSavedMultiplies` instead.
    static func pays(for geometry: Conv2DGeometry) -> Bool {
        geometry.inputChannels >= minimumChannels && geometry.outputChannels >= minimumChannels
            && savedMultiplies(geometry) >= requiredSavedMultiplies(geometry)
    }

    static let minimumChannels = 16
    /// Between the 432 of the fastest im2col layers measured and the 1188 of the slowest.
    static let minimumSavedMultiplies = 720
    /// Bytes the Winograd filter may add over the 3×3 one before a layer needs the larger saving:
    /// ResNet50's and Inception's 256-channel 14×14 layers (7 MB) stay under it.
    static let filterGrowthBudget = 16 << 20
    /// What a layer over the budget must save: the 7×7 512→512 layers at batch 8 (2376) ran 3×
    /// faster on Winograd; VGG16's three 14×14 ones at batch 1 (1188) ran 2× faster too (10–14 ms
    /// against 21–25 ms each, one thread, loaded machine), but not worth 28 MB each: peak RSS 281
    /// MB against ORT's 244, 208 MB on im2col. A smaller tile (F(2×2, 3×3)) would keep most of it.
    /// At batch 8 they take Winograd again, derived from the panels prepared for batch 1, which
    /// stay: VGG16's batch-8 peak went from 430 to 461 MB (ORT's: 628).
    static let largeFilterSavedMultiplies = 2000

    /// Multiplies Winograd saves per filter element over im2col: 9·pixels − 36·tiles.
    static func savedMultiplies(_ geometry: Conv2DGeometry) -> Int {
        9 * geometry.batch * geometry.output.height * geometry.output.width - 36 * tileCount(geometry)
    }

    static func requiredSavedMultiplies(_ geometry: Conv2DGeometry) -> Int {
        let growth = 27 * geometry.inputChannels * geometry.outputChannels * MemoryLayout<Float>.size
        return growth > filterGrowthBudget ? largeFilterSavedMultiplies : minimumSavedMultiplies
    }

    static func tileRows(_ geometry: Conv2DGeometry) -> Int { (geometry.output.height + 3) / 4 }
    static func tileColumns(_ geometry: Conv2DGeometry) -> Int { (geometry.output.width + 3) / 4 }
    static func tileCount(_ geometry: Conv2DGeometry) -> Int {
        geometry.batch * tileRows(geometry) * tileColumns(geometry)
    }

    /// The block size the budget allows, before evening out.
    static func budgetedBlockTiles(_ geometry: Conv2DGeometry) -> Int {
        let perTile = 36 * (geometry.inputChannels + geometry.outputChannels)
        return min(maximumBlockTiles, max(minimumBlockTiles, blockBudget / max(perTile, 1)))
    }

    /// Tiles per block for a run of `tiles` tiles, evened out so the last block is not a sliver.
    static func blockTiles(for tiles: Int, _ geometry: Conv2DGeometry) -> Int {
        let budgeted = budgetedBlockTiles(geometry)
        let count = max(1, tiles)
        let blocks = (count + budgeted - 1) / budgeted
        return (count + blocks - 1) / blocks
    }

    static func blockTiles(_ geometry: Conv2DGeometry) -> Int { blockTiles(for: tileCount(geometry), geometry) }

    /// Threads that each run their own share of the tiles from input to output, with their own
    /// scratch, when every one gets at least a full block: nothing is handed between cores and
    /// there is no barrier between the phases. Smaller layers share each block instead.
    static func pipelines(_ geometry: Conv2DGeometry, threads: Int) -> Int {
        threads > 1 && tileCount(geometry) >= threads * budgetedBlockTiles(geometry) ? threads : 1
    }

    static func pipelineScratch(_ geometry: Conv2DGeometry) -> Int {
        36 * budgetedBlockTiles(geometry) * (geometry.inputChannels + geometry.outputChannels)
    }

    /// Floats of scratch for `threads` threads; with less (the one-thread size), threads share blocks.
    static func scratchSize(for geometry: Conv2DGeometry, threads: Int = 1) -> Int {
        let pipelines = pipelines(geometry, threads: threads)
        return pipelines > 1 ? pipelines * pipelineScratch(geometry)
            : 36 * blockTiles(geometry) * (geometry.inputChannels + geometry.outputChannels)
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
    /// The output is 2×2 stride-2 max-pooled (floor mode) as it is written; NHWC only.
    let pooled: Bool
    let scratch: UnsafeMutablePointer<Float>
    let scratchCount: Int
    let context: KernelContext

    var inputChannels: Int { geometry.inputChannels }
    var outputChannels: Int { geometry.outputChannels }
    var weightPointStride: Int {
        WinogradWeights.pointStride(inputChannels: inputChannels, outputChannels: outputChannels)
    }

    func run() {
        let total = Winograd.tileCount(geometry)
        let pipelines = Winograd.pipelines(geometry, threads: context.threads)
        let perPipeline = Winograd.pipelineScratch(geometry)
        guard pipelines > 1, scratchCount >= pipelines * perPipeline else {
            return runBlocks(0..<total, scratch: scratch, context: context)
        }
        context.forEachChunk(pipelines, minimumChunk: 1) { indices in
            for index in indices {
                runBlocks((total * index / pipelines)..<(total * (index + 1) / pipelines),
                          scratch: scratch + index * perPipeline, context: .singleThreaded)
            }
        }
    }

    /// Transforms, multiplies and transforms back `tiles` block by block, using `context`'s threads
    /// within each block.
    func runBlocks(_ tiles: Range<Int>, scratch: UnsafeMutablePointer<Float>, context: KernelContext) {
        let block = Winograd.blockTiles(for: tiles.count, geometry)
        let transformed = scratch
        let products = scratch + 36 * block * inputChannels
        for start in stride(from: tiles.lowerBound, to: tiles.upperBound, by: block) {
            let count = min(block, tiles.upperBound - start)
            let tileGrain = max(1, parallelGrain / (36 * inputChannels))
            context.forEachChunk(count, minimumChunk: tileGrain) { tiles in
                transformInputs(tiles, blockStart: start, blockCount: count, destination: transformed)
            }
            // One single-threaded GEMM per point, points split across threads: small late-layer
            // blocks keep every GEMM whole instead of splitting each one across threads.
            context.forEachChunk(36, minimumChunk: 1) { points in
                for point in points {
                    panelPackedSGEMM(m: count, n: outputChannels, k: inputChannels,
                                     a: transformed + point * count * inputChannels, lda: inputChannels,
                                     panels: weights + point * weightPointStride,
                                     c: products + point * count * outputChannels, ldc: outputChannels)
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

    /// NCHW tiles read from a per-thread channels-last copy of the six input rows of their tile
    /// row (`band`), rebuilt when the tile row changes, so the channel transpose happens once per
    /// row instead of once per overlapping tile.
    func transformInputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, destination: UnsafeMutablePointer<Float>) {
        let (width, channels) = (geometry.input.width, inputChannels)
        let bandSize = geometry.layout == .nchw ? 6 * width * channels : 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 36 * channels + 36 * 8 + bandSize) { buffer in
            guard let patch = buffer.baseAddress else { return }
            let temporary = patch + 36 * channels
            let band = temporary + 36 * 8
            var bandRow = (image: -1, top: 0)
            let pointStride = blockCount * channels
            let simdInput = KernelTable.current.winograd_input_tile
            for local in tiles {
                let (image, row, column) = origin(blockStart + local)
                let (top, left) = (row - geometry.padding.top, column - geometry.padding.left)
                let view: ChannelsLastView
                switch geometry.layout {
                case .nhwc:
                    view = ChannelsLastView(base: input + image * geometry.input.height * width * channels,
                                            height: geometry.input.height, width: width, channels: channels, top: top)
                case .nchw:
                    if bandRow != (image, top) {
                        fillBand(band, image: image, top: top)
                        bandRow = (image, top)
                    }
                    view = ChannelsLastView(base: band, height: 6, width: width, channels: channels, top: 0)
                }
                let (source, rowStride) = view.patch(left: left, into: patch)
                let target = destination + local * channels
                if let simdInput {
                    simdInput(source, rowStride, channels, target, pointStride)
                    continue
                }
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

    /// Copies NCHW input rows top..<top+6 of `image` into `band` as [6][width][channels], with zero
    /// rows outside the image.
    func fillBand(_ band: UnsafeMutablePointer<Float>, image: Int, top: Int) {
        let (height, width, channels) = (geometry.input.height, geometry.input.width, inputChannels)
        for row in 0..<6 {
            let y = top + row
            let line = band + row * width * channels
            guard y >= 0 && y < height else {
                line.update(repeating: 0, count: width * channels)
                continue
            }
            let first = input + (image * channels * height + y) * width
            transpose(first, sourceStride: height * width, rows: channels, columns: width,
                      to: line, destinationStride: channels)
        }
    }

    func transformOutputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, source: UnsafePointer<Float>) {
        let (height, width, channels) = (geometry.output.height, geometry.output.width, outputChannels)
        let bandSize = geometry.layout == .nchw ? 4 * width * channels : 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * channels + 24 * 8 + bandSize) { buffer in
            guard let staging = buffer.baseAddress else { return }
            let temporary = staging + 16 * channels
            let band = OutputBand(base: temporary + 24 * 8)
            let pointStride = blockCount * channels
            var pending: (image: Int, top: Int, columns: Range<Int>)?
            let simdEpilogue = activation == .identity || activation == .relu ? KernelTable.current.winograd_output_tile : nil
            for local in tiles {
                let products = source + local * channels
                let (image, top, left) = origin(blockStart + local)
                let columns = min(4, width - left)
                // Where the tile goes: the output itself (NHWC, pooled or not) or, for NCHW, the band
                // of channels-last rows that goes to the planes a tile row at a time.
                let (target, rowStride, rows): (UnsafeMutablePointer<Float>, Int, Int)
                switch geometry.layout {
                case .nhwc where pooled:
                    target = output + ((image * (height / 2) + top / 2) * (width / 2) + left / 2) * channels
                    (rowStride, rows) = ((width / 2) * channels, min(4, height - top))
                case .nhwc:
                    target = output + ((image * height + top) * width + left) * channels
                    (rowStride, rows) = (width * channels, min(4, height - top))
                case .nchw:
                    if let open = pending, open.image != image || open.top != top {
                        flush(band, image: open.image, top: open.top, columns: open.columns)
                        pending = nil
                    }
                    pending = (image, top, (pending?.columns.lowerBound ?? left)..<(left + columns))
                    (target, rowStride, rows) = (band.base + left * channels, width * channels, 4)
                }
                if let simdEpilogue {
                    simdEpilogue(products, pointStride, channels, bias, activation == .relu ? 1 : 0, pooled ? 1 : 0,
                                 target, rowStride, channels, Int32(rows), Int32(columns))
                    continue
                }
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
                if pooled {
                    poolTile(staging, rows: rows, columns: columns, to: target, rowStride: rowStride)
                } else {
                    copyTile(staging, rows: rows, columns: columns, to: target, rowStride: rowStride)
                }
            }
            if let open = pending { flush(band, image: open.image, top: open.top, columns: open.columns) }
        }
    }

    /// Max-pools 2×2 blocks of a staged 4×4×channels tile (its first `rows` × `columns` pixels) into
    /// pooled pixels `rowStride` apart by row.
    func poolTile(_ staging: UnsafePointer<Float>, rows: Int, columns: Int, to base: UnsafeMutablePointer<Float>,
                  rowStride: Int) {
        let channels = outputChannels
        for row in 0..<(rows / 2) {
            for column in 0..<(columns / 2) {
                let corner = staging + (2 * row * 4 + 2 * column) * channels
                let target = base + row * rowStride + column * channels
                for channel in 0..<channels {
                    let top = propagatingMax(corner[channel], corner[channels + channel])
                    let bottom = propagatingMax(corner[4 * channels + channel], corner[5 * channels + channel])
                    target[channel] = propagatingMax(top, bottom)
                }
            }
        }
    }

    /// Copies `rows` × `columns` pixels of a staged 4×4×channels tile to rows `rowStride` apart.
    func copyTile(_ staging: UnsafePointer<Float>, rows: Int, columns: Int, to base: UnsafeMutablePointer<Float>,
                  rowStride: Int) {
        for row in 0..<rows {
            (base + row * rowStride).update(from: staging + row * 4 * outputChannels, count: columns * outputChannels)
        }
    }

    /// Writes output columns `columns` of the band's valid rows into the NCHW planes of `image`.
    func flush(_ band: OutputBand, image: Int, top: Int, columns: Range<Int>) {
        let (height, width, channels) = (geometry.output.height, geometry.output.width, outputChannels)
        for row in 0..<min(4, height - top) {
            let line = UnsafePointer(band.base) + (row * width + columns.lowerBound) * channels
            let first = output + (image * channels * height + top + row) * width + columns.lowerBound
            transpose(line, sourceStride: channels, rows: columns.count, columns: channels,
                      to: first, destinationStride: height * width)
        }
    }
}

/// Channels-last rows of one band of NCHW output, [4][width][channels].
struct OutputBand {
    let base: UnsafeMutablePointer<Float>
}

/// A channels-last image (or band of rows) whose row 0 sits at input row `top`.
struct ChannelsLastView {
    let base: UnsafePointer<Float>
    let height: Int
    let width: Int
    let channels: Int
    let top: Int

    /// The 6×6×channels patch starting at column `left` as (base, row stride): read in place when
    /// it lies inside the view, otherwise copied into `patch` with zeros for the padding.
    func patch(left: Int, into patch: UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int) {
        if top >= 0 && left >= 0 && top + 6 <= height && left + 6 <= width {
            return (base + (top * width + left) * channels, width * channels)
        }
        for row in 0..<6 {
            for column in 0..<6 {
                let destination = patch + (row * 6 + column) * channels
                let (y, x) = (top + row, left + column)
                if y >= 0 && y < height && x >= 0 && x < width {
                    destination.update(from: base + (y * width + x) * channels, count: channels)
                } else {
                    destination.update(repeating: 0, count: channels)
                }
            }
        }
        return (UnsafePointer(patch), 6 * channels)
    }
}

/// destination[column · destinationStride + row] = source[row · sourceStride + column] for a
/// rows × columns block: 8×8 sub-blocks are loaded as vectors and transposed in registers, so
/// both sides move whole 8-float runs; the ragged edges go element by element.
func transpose(_ source: UnsafePointer<Float>, sourceStride: Int, rows: Int, columns: Int,
               to destination: UnsafeMutablePointer<Float>, destinationStride: Int) {
    let fullRows = rows - rows % 8
    let fullColumns = columns - columns % 8
    for row in stride(from: 0, to: fullRows, by: 8) {
        let line = source + row * sourceStride
        for column in stride(from: 0, to: fullColumns, by: 8) {
            let block = line + column
            let v0 = SIMD8<Float>(loadingFrom: block)
            let v1 = SIMD8<Float>(loadingFrom: block + sourceStride)
            let v2 = SIMD8<Float>(loadingFrom: block + 2 * sourceStride)
            let v3 = SIMD8<Float>(loadingFrom: block + 3 * sourceStride)
            let v4 = SIMD8<Float>(loadingFrom: block + 4 * sourceStride)
            let v5 = SIMD8<Float>(loadingFrom: block + 5 * sourceStride)
            let v6 = SIMD8<Float>(loadingFrom: block + 6 * sourceStride)
            let v7 = SIMD8<Float>(loadingFrom: block + 7 * sourceStride)
            let target = destination + column * destinationStride + row
            for lane in 0..<8 {
                SIMD8(v0[lane], v1[lane], v2[lane], v3[lane], v4[lane], v5[lane], v6[lane], v7[lane])
                    .store(to: target + lane * destinationStride)
            }
        }
        for column in fullColumns..<columns {
            for offset in 0..<8 { destination[column * destinationStride + row + offset] = line[offset * sourceStride + column] }
        }
    }
    for row in fullRows..<rows {
        for column in 0..<columns { destination[column * destinationStride + row] = source[row * sourceStride + column] }
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
