/// Winograd convolution for 3×3, stride-1 layers, which are most of a VGG's work, in two tile
/// sizes (`WinogradTile`). The output is cut into m×m tiles over the whole batch; a block of tiles
/// is transformed into (m+2)² [tiles, inputChannels] matrices, multiplied by as many transformed
/// filters (one GEMM per point), and transformed back with the bias and activation applied while
/// each output tile is still in cache. Both layouts share the transforms, which run over channels:
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

    static func tileRows(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        (geometry.output.height + tile.outputSize - 1) / tile.outputSize
    }
    static func tileColumns(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        (geometry.output.width + tile.outputSize - 1) / tile.outputSize
    }
    static func tileCount(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        geometry.batch * tileRows(geometry, tile) * tileColumns(geometry, tile)
    }

    static func blocking(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> WinogradBlocking {
        WinogradBlocking(points: tile.points, tiles: tileCount(geometry, tile), inputChannels: geometry.inputChannels,
                         outputChannels: geometry.outputChannels)
    }

    /// Floats of scratch for `threads` threads; with less (the one-thread size), threads share blocks.
    static func scratchSize(for geometry: Conv2DGeometry, _ tile: WinogradTile, threads: Int = 1) -> Int {
        blocking(geometry, tile).scratchSize(threads: threads)
    }
}

/// How a Winograd convolution (2-D tiles or tiles along a line) is cut into blocks of tiles and
/// shared among threads, from its transform points, tile count and channels alone.
struct WinogradBlocking {
    let points: Int
    let tiles: Int
    let inputChannels: Int
    let outputChannels: Int

    /// The block size the budget allows, before evening out.
    var budgetedBlockTiles: Int {
        let perTile = points * (inputChannels + outputChannels)
        return min(Winograd.maximumBlockTiles, max(Winograd.minimumBlockTiles, Winograd.blockBudget / max(perTile, 1)))
    }

    /// Tiles per block for a run of `tiles` tiles, evened out so the last block is not a sliver.
    func blockTiles(for tiles: Int) -> Int {
        let budgeted = budgetedBlockTiles
        let count = max(1, tiles)
        let blocks = (count + budgeted - 1) / budgeted
        return (count + blocks - 1) / blocks
    }

    /// Threads that each run their own share of the tiles from input to output, with their own
    /// scratch, when every one gets at least a full block: nothing is handed between cores and
    /// there is no barrier between the phases. Smaller layers share each block instead.
    func pipelines(threads: Int) -> Int {
        threads > 1 && tiles >= threads * budgetedBlockTiles ? threads : 1
    }

    var pipelineScratch: Int { points * budgetedBlockTiles * (inputChannels + outputChannels) }

    /// Floats of scratch for `threads` threads; with less (the one-thread size), threads share blocks.
    func scratchSize(threads: Int = 1) -> Int {
        let pipelines = pipelines(threads: threads)
        return pipelines > 1 ? pipelines * pipelineScratch
            : points * blockTiles(for: tiles) * (inputChannels + outputChannels)
    }
}

/// The phases every Winograd convolution runs per block of tiles: inputs transformed into one
/// [tiles, inputChannels] matrix per point, one GEMM per point against the transformed filter,
/// products transformed back. The transforms are the caller's; this owns blocks and threads.
struct WinogradPipeline {
    let blocking: WinogradBlocking
    let weights: UnsafePointer<Float>
    /// How each point's matrix is laid out in panels.
    let weightLayout: PanelLayout
    let scratch: UnsafeMutablePointer<Float>
    let scratchCount: Int
    let context: KernelContext

    /// `transformInputs(tiles, blockStart, blockCount, destination)` writes the block's tiles
    /// `tiles` (block-relative) as destination[point][tile][inputChannel]; `transformOutputs(tiles,
    /// blockStart, blockCount, products)` reads products[point][tile][outputChannel].
    func run(transformInputs: (Range<Int>, Int, Int, UnsafeMutablePointer<Float>) -> Void,
             transformOutputs: (Range<Int>, Int, Int, UnsafePointer<Float>) -> Void) {
        let pipelines = blocking.pipelines(threads: context.threads)
        let perPipeline = blocking.pipelineScratch
        guard pipelines > 1, scratchCount >= pipelines * perPipeline else {
            return runBlocks(0..<blocking.tiles, scratch: scratch, context: context, transformInputs, transformOutputs)
        }
        context.forEachBalancedChunk(blocking.tiles, chunks: pipelines) { tiles, index in
            runBlocks(tiles, scratch: scratch + index * perPipeline, context: .singleThreaded, transformInputs,
                      transformOutputs)
        }
    }

    /// Transforms, multiplies and transforms back `tiles` block by block, using `context`'s threads
    /// within each block.
    private func runBlocks(_ tiles: Range<Int>, scratch: UnsafeMutablePointer<Float>, context: KernelContext,
                           _ transformInputs: (Range<Int>, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                           _ transformOutputs: (Range<Int>, Int, Int, UnsafePointer<Float>) -> Void) {
        let (points, inputChannels, outputChannels) = (blocking.points, blocking.inputChannels, blocking.outputChannels)
        let weightPointStride = WinogradWeights.pointStride(inputChannels: inputChannels, outputChannels: outputChannels)
        let block = blocking.blockTiles(for: tiles.count)
        let transformed = scratch
        let products = scratch + points * block * inputChannels
        for start in stride(from: tiles.lowerBound, to: tiles.upperBound, by: block) {
            let count = min(block, tiles.upperBound - start)
            let tileGrain = max(1, parallelGrain / (points * inputChannels))
            context.forEachBalancedChunk(count, minimumChunk: tileGrain) { tiles, _ in
                transformInputs(tiles, start, count, transformed)
            }
            // One single-threaded GEMM per point, points split across threads: small late-layer
            // blocks keep every GEMM whole instead of splitting each one across threads.
            context.forEachBalancedChunk(points, minimumChunk: 1) { points, _ in
                for point in points {
                    panelPackedSGEMM(m: count, n: outputChannels, k: inputChannels,
                                     a: transformed + point * count * inputChannels, lda: inputChannels,
                                     b: weightLayout.right(weights + point * weightPointStride),
                                     c: products + point * count * outputChannels, ldc: outputChannels)
                }
            }
            context.forEachBalancedChunk(count, minimumChunk: max(1, parallelGrain / (points * outputChannels))) { tiles, _ in
                transformOutputs(tiles, start, count, products)
            }
        }
    }
}

/// One validated Winograd call.
struct WinogradRun {
    let input: UnsafePointer<Float>
    let weights: UnsafePointer<Float>
    /// How each point's matrix is laid out in panels.
    let weightLayout: PanelLayout
    let bias: UnsafePointer<Float>?
    let activation: UnaryOperation
    let output: UnsafeMutablePointer<Float>
    /// NHWC: floats between consecutive output pixels (the output channels, or more in a wider buffer).
    let pixelStride: Int
    let geometry: Conv2DGeometry
    let tile: WinogradTile
    /// The output is 2×2 stride-2 max-pooled (floor mode) as it is written; NHWC only.
    let pooled: Bool
    let scratch: UnsafeMutablePointer<Float>
    let scratchCount: Int
    let context: KernelContext

    var inputChannels: Int { geometry.inputChannels }
    var outputChannels: Int { geometry.outputChannels }
    var points: Int { tile.points }

    func run() {
        WinogradPipeline(blocking: Winograd.blocking(geometry, tile), weights: weights, weightLayout: weightLayout,
                         scratch: scratch, scratchCount: scratchCount, context: context)
            .run(transformInputs: transformInputs, transformOutputs: transformOutputs)
    }

    /// Where tile `tile` (counted over the batch) starts: image, first output row and column.
    func origin(_ tile: Int) -> (image: Int, row: Int, column: Int) {
        let rows = Winograd.tileRows(geometry, self.tile)
        let columns = Winograd.tileColumns(geometry, self.tile)
        let image = tile / (rows * columns)
        let within = tile - image * rows * columns
        let size = self.tile.outputSize
        return (image, (within / columns) * size, (within % columns) * size)
    }

    /// NCHW tiles read from a per-thread channels-last copy of the m + 2 input rows of their tile
    /// row (`band`), rebuilt when the tile row changes, so the channel transpose happens once per
    /// row instead of once per overlapping tile.
    func transformInputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, destination: UnsafeMutablePointer<Float>) {
        let (width, channels, side) = (geometry.input.width, inputChannels, tile.inputSize)
        let bandSize = geometry.layout == .nchw ? side * width * channels : 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: points * channels + points * 8 + bandSize) { buffer in
            guard let patch = buffer.baseAddress else { return }
            let temporary = patch + points * channels
            let band = temporary + points * 8
            var bandRow = (image: -1, top: 0)
            let pointStride = blockCount * channels
            let table = KernelTable.current
            let simdInput = tile == .large ? table.winograd_input_tile : table.winograd2_input_tile
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
                    view = ChannelsLastView(base: band, height: side, width: width, channels: channels, top: 0)
                }
                let (source, rowStride) = view.patch(left: left, size: side, into: patch)
                let target = destination + local * channels
                if let simdInput {
                    simdInput(source, rowStride, channels, target, pointStride)
                    continue
                }
                var channel = 0
                while channel + 8 <= channels {
                    WinogradTransform.inputTile(SIMD8<Float>.self, tile, source: source + channel, rowStride: rowStride,
                                                columnStride: channels, destination: target + channel,
                                                pointStride: pointStride, temporary: temporary)
                    channel += 8
                }
                while channel < channels {
                    WinogradTransform.inputTile(Float.self, tile, source: source + channel, rowStride: rowStride,
                                                columnStride: channels, destination: target + channel,
                                                pointStride: pointStride, temporary: temporary)
                    channel += 1
                }
            }
        }
    }

    /// Copies NCHW input rows top..<top+m+2 of `image` into `band` as [m+2][width][channels], with
    /// zero rows outside the image.
    func fillBand(_ band: UnsafeMutablePointer<Float>, image: Int, top: Int) {
        let (height, width, channels) = (geometry.input.height, geometry.input.width, inputChannels)
        for row in 0..<tile.inputSize {
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
        let size = tile.outputSize
        let bandSize = geometry.layout == .nchw ? size * width * channels : 0
        let temporarySize = size * tile.inputSize * 8
        withUnsafeTemporaryAllocation(of: Float.self, capacity: size * size * channels + temporarySize + bandSize) { buffer in
            guard let staging = buffer.baseAddress else { return }
            let temporary = staging + size * size * channels
            let band = OutputBand(base: temporary + temporarySize)
            let pointStride = blockCount * channels
            var pending: (image: Int, top: Int, columns: Range<Int>)?
            let table = KernelTable.current
            // ReLU is fused into the C tile pass; another activation with a C form runs on the
            // vector activation kernel over the tile's rows while they are in cache (EfficientNetV2's
            // SiLU after its 3×3 layers ran 2.7× slower through the Swift transform). A pooled tile
            // is pooled inside the pass, so its activation must be ReLU.
            let tilePass = tile == .large ? table.winograd_output_tile : table.winograd2_output_tile
            let afterTile = activation != .identity && activation != .relu && !pooled && table.activate_rows != nil
                && KernelEpilogue.fusedActivation(activation) != nil
            let simdEpilogue = activation == .identity || activation == .relu || afterTile ? tilePass : nil
            for local in tiles {
                let products = source + local * channels
                let (image, top, left) = origin(blockStart + local)
                let columns = min(size, width - left)
                // Where the tile goes: the output itself (NHWC, pooled or not) or, for NCHW, the band
                // of channels-last rows that goes to the planes a tile row at a time.
                let (target, rowStride, rows): (UnsafeMutablePointer<Float>, Int, Int)
                switch geometry.layout {
                case .nhwc where pooled:
                    target = output + ((image * (height / 2) + top / 2) * (width / 2) + left / 2) * channels
                    (rowStride, rows) = ((width / 2) * channels, min(size, height - top))
                case .nhwc:
                    target = output + ((image * height + top) * width + left) * pixelStride
                    (rowStride, rows) = (width * pixelStride, min(size, height - top))
                case .nchw:
                    if let open = pending, open.image != image || open.top != top {
                        flush(band, image: open.image, top: open.top, columns: open.columns)
                        pending = nil
                    }
                    pending = (image, top, (pending?.columns.lowerBound ?? left)..<(left + columns))
                    (target, rowStride, rows) = (band.base + left * channels, width * channels, size)
                }
                // Pixels of a tile row are a strided NHWC output's pixel stride apart, else the channels.
                let columnStride = geometry.layout == .nhwc && !pooled ? pixelStride : channels
                if let simdEpilogue {
                    simdEpilogue(products, pointStride, channels, bias, activation == .relu ? 1 : 0, pooled ? 1 : 0,
                                 target, rowStride, columnStride, Int32(rows), Int32(columns))
                    if afterTile {
                        for row in 0..<rows {
                            let line = target + row * rowStride
                            _ = applyVectorActivation(input: line, output: line, rows: columnStride == channels ? 1 : columns,
                                                      columns: columnStride == channels ? columns * channels : channels,
                                                      rowStride: columnStride, bias: nil, direction: .perColumn,
                                                      activation: activation, context: .singleThreaded)
                        }
                    }
                    continue
                }
                var channel = 0
                while channel + 8 <= channels {
                    let bias = self.bias.map { SIMD8<Float>(loadingFrom: $0 + channel) } ?? SIMD8<Float>()
                    WinogradTransform.outputTile(SIMD8<Float>.self, tile, source: products + channel, pointStride: pointStride,
                                                 bias: bias, destination: staging + channel, outputStride: channels,
                                                 temporary: temporary)
                    channel += 8
                }
                while channel < channels {
                    WinogradTransform.outputTile(Float.self, tile, source: products + channel, pointStride: pointStride,
                                                 bias: self.bias?[channel] ?? 0, destination: staging + channel,
                                                 outputStride: channels, temporary: temporary)
                    channel += 1
                }
                if activation != .identity {
                    activation.accept(InPlaceMap(values: staging, count: size * size * channels))
                }
                if pooled {
                    poolTile(staging, rows: rows, columns: columns, to: target, rowStride: rowStride)
                } else {
                    copyTile(staging, rows: rows, columns: columns, to: target, rowStride: rowStride,
                             columnStride: columnStride)
                }
            }
            if let open = pending { flush(band, image: open.image, top: open.top, columns: open.columns) }
        }
    }

    /// Max-pools 2×2 blocks of a staged m×m×channels tile (its first `rows` × `columns` pixels) into
    /// pooled pixels `rowStride` apart by row.
    func poolTile(_ staging: UnsafePointer<Float>, rows: Int, columns: Int, to base: UnsafeMutablePointer<Float>,
                  rowStride: Int) {
        let (channels, size) = (outputChannels, tile.outputSize)
        for row in 0..<(rows / 2) {
            for column in 0..<(columns / 2) {
                let corner = staging + (2 * row * size + 2 * column) * channels
                let target = base + row * rowStride + column * channels
                for channel in 0..<channels {
                    let top = propagatingMax(corner[channel], corner[channels + channel])
                    let bottom = propagatingMax(corner[size * channels + channel], corner[(size + 1) * channels + channel])
                    target[channel] = propagatingMax(top, bottom)
                }
            }
        }
    }

    /// Copies `rows` × `columns` pixels of a staged m×m×channels tile to rows `rowStride` apart,
    /// pixels `columnStride` apart.
    func copyTile(_ staging: UnsafePointer<Float>, rows: Int, columns: Int, to base: UnsafeMutablePointer<Float>,
                  rowStride: Int, columnStride: Int) {
        for row in 0..<rows {
            let line = staging + row * tile.outputSize * outputChannels
            guard columnStride != outputChannels else {
                (base + row * rowStride).update(from: line, count: columns * outputChannels)
                continue
            }
            for column in 0..<columns {
                (base + row * rowStride + column * columnStride).update(from: line + column * outputChannels,
                                                                        count: outputChannels)
            }
        }
    }

    /// Writes output columns `columns` of the band's valid rows into the NCHW planes of `image`.
    func flush(_ band: OutputBand, image: Int, top: Int, columns: Range<Int>) {
        let (height, width, channels) = (geometry.output.height, geometry.output.width, outputChannels)
        for row in 0..<min(tile.outputSize, height - top) {
            let line = UnsafePointer(band.base) + (row * width + columns.lowerBound) * channels
            let first = output + (image * channels * height + top + row) * width + columns.lowerBound
            transpose(line, sourceStride: channels, rows: columns.count, columns: channels,
                      to: first, destinationStride: height * width)
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
