/// 3×3 filters in the Winograd F(4×4, 3×3) or F(2×2, 3×3) domain, transformed once when a model
/// is prepared: 36 (or 16) [inputChannels, outputChannels] matrices, one per transform point,
/// which are the right-hand sides of the GEMMs a Winograd convolution runs per block of tiles.
/// Each matrix is stored in panels of 32 output channels (`PanelLayout`: [panel][inputChannel][32] or
/// split into 16-column halves, the last panel zero-padded) so the GEMM streams it as it is
/// instead of repacking it on every call.
/// They take 4× (16/9×) the memory of the plain filter (36 or 16 points instead of 9 taps).
import CSIMDKernels

public struct WinogradWeights: Sendable, Equatable {
    public let inputChannels: Int
    public let outputChannels: Int
    public let tile: WinogradTile
    /// Whether each panel is stored as two 16-column halves.
    public let splitHalves: Bool
    /// [points][panels][inputChannels][panelColumns], each point's panels as `layout` says.
    let storage: WeightStorage

    /// How each point's matrix is laid out.
    var layout: PanelLayout { PanelLayout(depth: inputChannels, splitHalves: splitHalves) }

    /// Output channels per panel.
    static let panelColumns = Int(KEEL_PANEL_COLUMNS)

    /// Panels of `panelColumns` output channels, the last one padded.
    static func panels(outputChannels: Int) -> Int { (outputChannels + panelColumns - 1) / panelColumns }

    /// Floats one point's matrix takes, padding included.
    static func pointStride(inputChannels: Int, outputChannels: Int) -> Int {
        panels(outputChannels: outputChannels) * panelColumns * inputChannels
    }

    /// Floats of all the tile's matrices; throws when that overflows.
    static func storageCount(inputChannels: Int, outputChannels: Int, tile: WinogradTile) throws -> Int {
        try elementCount([tile.points, panels(outputChannels: outputChannels), inputChannels, panelColumns],
                         "winograd weights")
    }

    /// Storage starts uninitialised: zeroes each point's last panel where `outputs` leaves columns
    /// unused, before the transform writes the rest.
    static func zeroPadding(_ destination: UnsafeMutablePointer<Float>, points: Int, pointStride: Int, inputs: Int,
                            outputs: Int) {
        guard outputs % panelColumns != 0 else { return }
        let lastPanel = (outputs / panelColumns) * inputs * panelColumns
        for point in 0..<points {
            (destination + point * pointStride + lastPanel).initialize(repeating: 0, count: inputs * panelColumns)
        }
    }

    /// Logical extents of the transformed values: [points, inputChannels, outputChannels].
    public var dims: [Int] { [tile.points, inputChannels, outputChannels] }

    /// Read access to the transformed values as stored (each point's `pointStride` floats in
    /// `layout`), valid inside `body`.
    public func withUnsafeValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Values transformed earlier (by `withUnsafeValues`) and kept elsewhere, used in place:
    /// `owner` is retained for as long as these weights live. Throws unless the count matches.
    public init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject,
                inputChannels: Int, outputChannels: Int, tile: WinogradTile = .large, splitHalves: Bool) throws {
        let name = "winograd weights"
        try require(inputChannels > 0 && outputChannels > 0, name, "\(inputChannels) input and \(outputChannels) output channels")
        let count = try Self.storageCount(inputChannels: inputChannels, outputChannels: outputChannels, tile: tile)
        try require(values.count == count && (count == 0 || values.baseAddress != nil), name,
                    "\(values.count) values given, \(count) expected for \(inputChannels) input and \(outputChannels) output channels")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.tile = tile
        self.splitHalves = splitHalves
        self.storage = WeightStorage(borrowing: values, owner: owner)
    }

    /// From filters packed for im2col (a 3×3 kernel, one group).
    public init(_ packed: PackedConv2DWeights, tile: WinogradTile = .large,
                context: KernelContext = .singleThreaded) throws {
        try require(packed.kernel == Size2D(3, 3) && packed.groups == 1, "winograd weights",
                    "needs a 3x3 kernel with one group, got kernel \(packed.kernel) in \(packed.groups) groups")
        let (inputs, outputs) = (packed.inputChannelsPerGroup, packed.outputChannels)
        self = try packed.storage.withUnsafeBufferPointer {
            try WinogradWeights(source: $0, inputs: inputs, outputs: outputs,
                                strides: (output: 1, channel: outputs, tap: inputs * outputs), tile: tile,
                                context: context)
        }
    }

    /// From Keras's HWIO kernel `[3, 3, inputChannels, outputChannels]`.
    public init(hwio: UnsafeBufferPointer<Float>, inputChannels: Int, outputChannels: Int,
                tile: WinogradTile = .large, context: KernelContext = .singleThreaded) throws {
        try self.init(source: hwio, inputs: inputChannels, outputs: outputChannels,
                      strides: (output: 1, channel: outputChannels, tap: inputChannels * outputChannels), tile: tile,
                      context: context)
    }

    /// From ONNX's OIHW kernel `[outputChannels, inputChannels, 3, 3]`.
    public init(oihw: UnsafeBufferPointer<Float>, inputChannels: Int, outputChannels: Int,
                tile: WinogradTile = .large, context: KernelContext = .singleThreaded) throws {
        try self.init(source: oihw, inputs: inputChannels, outputs: outputChannels,
                      strides: (output: 9 * inputChannels, channel: 9, tap: 1), tile: tile, context: context)
    }

    /// Tap t = row·3 + column of filter (channel, output) is source[output·s.output + channel·s.channel + t·s.tap].
    /// Several output channels are transformed at once (CSIMDKernels' vector kernel for the large
    /// tile when a SIMD level is in use; the small tile's few additions run in Swift), in double
    /// precision so the only rounding that matters is the final one to Float.
    private init(source: UnsafeBufferPointer<Float>, inputs: Int, outputs: Int,
                 strides: (output: Int, channel: Int, tap: Int), tile: WinogradTile, context: KernelContext) throws {
        let name = "winograd weights"
        try require(inputs > 0 && outputs > 0, name, "\(inputs) input and \(outputs) output channels")
        try requireCapacity(source.count, try elementCount([9, inputs, outputs], name), name, "kernel")
        let storageCount = try Self.storageCount(inputChannels: inputs, outputChannels: outputs, tile: tile)
        let (points, side) = (tile.points, tile.inputSize)
        let pointStride = storageCount / points
        let layout = PanelLayout(depth: inputs)
        self.storage = WeightStorage(count: storageCount) { destination in
            guard let source = source.baseAddress, let destination = destination.baseAddress else { return }
            WinogradWeights.zeroPadding(destination, points: points, pointStride: pointStride, inputs: inputs,
                                        outputs: outputs)
            // Input channels split across threads; each writes its own rows of every point's matrix.
            context.forEachChunk(inputs, minimumChunk: 1) { channels in
                if tile == .large, let transform = KernelTable.current.winograd_filter_transform {
                    return transform(source, inputs, outputs, strides.output, strides.channel, strides.tap,
                                     channels.lowerBound, channels.upperBound, destination, pointStride,
                                     layout.splitHalves ? 1 : 0)
                }
                // The portable loop, eight output channels at a time.
                // taps: 9 vectors; half: G·g as 3 columns of `side`; line: one row of `side`.
                withUnsafeTemporaryAllocation(of: SIMD8<Double>.self, capacity: 9 + 3 * side + side) { work in
                    guard let taps = work.baseAddress else { return }
                    let (half, line) = (taps + 9, taps + 9 + 3 * side)
                    let filter = tile == .large ? WinogradTransform.filter : WinogradTransform.smallFilter
                    for channel in channels {
                        for first in stride(from: 0, to: outputs, by: 8) {
                            let lanes = min(8, outputs - first)
                            for tap in 0..<9 {
                                var values = SIMD8<Double>()
                                for lane in 0..<lanes {
                                    values[lane] = Double(source[(first + lane) * strides.output
                                                                 + channel * strides.channel + tap * strides.tap])
                                }
                                taps[tap] = values
                            }
                            // G·g down each column of the filter (side rows × 3 columns), then ·Gᵀ along each row.
                            for column in 0..<3 {
                                filter(taps[column], taps[3 + column], taps[6 + column], half + side * column)
                            }
                            // Eight lanes never straddle a panel's half (8 divides 16).
                            let target = destination + layout.offset(depth: channel, column: first)
                            for row in 0..<side {
                                filter(half[row], half[side + row], half[2 * side + row], line)
                                for column in 0..<side {
                                    let values = SIMD8<Float>(line[column])
                                    let point = target + (row * side + column) * pointStride
                                    for lane in 0..<lanes { point[lane] = values[lane] }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.inputChannels = inputs
        self.outputChannels = outputs
        self.tile = tile
        self.splitHalves = layout.splitHalves
    }

    /// Whether a convolution of `geometry` can run on Winograd weights at all (whether it should
    /// is `Conv2D.defaultAlgorithm`'s call).
    public static func canRun(_ geometry: Conv2DGeometry) -> Bool { Winograd.supports(geometry) }

    /// Throws unless these weights were transformed for `geometry`.
    func check(against geometry: Conv2DGeometry) throws {
        try require(inputChannels == geometry.inputChannels && outputChannels == geometry.outputChannels,
                    "conv2d", "Winograd weights (\(inputChannels) in, \(outputChannels) out) do not match the "
                        + "geometry (\(geometry.inputChannels) in, \(geometry.outputChannels) out)")
    }
}
