/// Convolution weights rearranged once, at load time, into the matrix the GEMM consumes:
/// per group a row-major [K, outputChannelsPerGroup] block with K ordered (kernelRow, kernelColumn,
/// inputChannel). The same packing serves NHWC (columns × W) and NCHW (Wᵀ × columns), so a model
/// packs its weights once whichever layout its activations use.

import CSIMDKernels

public struct PackedConv2DWeights: Sendable, Equatable {
    public let kernel: Size2D
    public let inputChannelsPerGroup: Int
    public let outputChannels: Int
    public let groups: Int
    /// [groups][K][outputChannelsPerGroup], K = kernel.height · kernel.width · inputChannelsPerGroup.
    let storage: WeightStorage
    /// A grouped filter with as many output as input channels per group (depthwise included, and
    /// depthwise with a channel multiplier: [taps][output channels]), also tap-major: per block of channels [taps][in-group input channel j][the block's channels],
    /// the NHWC depthwise and grouped kernels loading a vector of output channels per tap and j.
    /// Depthwise filters are one block of every channel; grouped ones blocks of
    /// `keel_grouped_block_channels` (a group of 16 or more channels is its own block, the same
    /// values as `storage`, which is then shared rather than copied). Made once here; transposed on
    /// every call instead, it took a tenth of a 7×7×960 depthwise layer's time (Zen 3, one core).
    /// Nil for other filters.
    let tapMajor: WeightStorage?

    /// Extents of the packed values: [groups, K, outputChannelsPerGroup].
    public var dims: [Int] { [groups, reductionLength, outputChannelsPerGroup] }

    /// Read access to the packed values (row-major over `dims`), valid inside `body`.
    public func withUnsafeValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Values packed earlier (by `withUnsafeValues`) and kept elsewhere, used in place: `owner`
    /// is retained for as long as these weights live. Throws unless the count matches.
    public init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, kernel: Size2D,
                inputChannelsPerGroup: Int, outputChannels: Int, groups: Int = 1) throws {
        let name = "conv2d weights"
        let count = try Self.validatedCount(kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                            outputChannels: outputChannels, groups: groups)
        try require(values.count == count && (count == 0 || values.baseAddress != nil), name,
                    "\(values.count) values given, \(count) expected for kernel \(kernel), "
                        + "\(inputChannelsPerGroup) inputs per group, \(outputChannels) outputs")
        self.kernel = kernel
        self.inputChannelsPerGroup = inputChannelsPerGroup
        self.outputChannels = outputChannels
        self.groups = groups
        self.storage = WeightStorage(borrowing: values, owner: owner)
        tapMajor = Self.tapMajor(of: storage, kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                          outputChannels: outputChannels, groups: groups)
    }

    /// Values packed into `storage` from weights of these extents, validated when those were made.
    init(validated storage: WeightStorage, kernel: Size2D, inputChannelsPerGroup: Int, outputChannels: Int, groups: Int) {
        self.kernel = kernel
        self.inputChannelsPerGroup = inputChannelsPerGroup
        self.outputChannels = outputChannels
        self.groups = groups
        self.storage = storage
        tapMajor = Self.tapMajor(of: storage, kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                          outputChannels: outputChannels, groups: groups)
    }

    /// `storage` ([groups][taps·j][outputs per group]) tap-major when it holds a grouped filter
    /// with as many outputs as inputs per group: for a depthwise filter [taps][channels], for
    /// others, per block of `keel_grouped_block_channels` channels, [taps·j][the block's channels].
    private static func tapMajor(of storage: WeightStorage, kernel: Size2D, inputChannelsPerGroup: Int,
                                 outputChannels: Int, groups: Int) -> WeightStorage? {
        let size = inputChannelsPerGroup
        if groups > 1, size == 1, outputChannels > groups, outputChannels % groups == 0 {
            return channelMultiplierTapMajor(of: storage, taps: kernel.height * kernel.width, outputChannels: outputChannels,
                                             groups: groups)
        }
        guard groups > 1, outputChannels == groups * size else { return nil }
        let block = size == 1 ? outputChannels : keel_grouped_block_channels(size)
        if block == size { return storage }
        let taps = kernel.height * kernel.width, channels = outputChannels, reduction = taps * size
        return storage.withUnsafeBufferPointer { packed in
            WeightStorage(count: taps * size * channels) { transposed in
                guard let source = packed.baseAddress, let target = transposed.baseAddress,
                      packed.count == taps * size * channels else { return }
                for group in 0..<groups {
                    let first = group * size, blockStart = first - first % block
                    let width = min(block, channels - blockStart)
                    for k in 0..<reduction {
                        let from = source + (group * reduction + k) * size
                        let to = target + blockStart * reduction + k * width + (first - blockStart)
                        for output in 0..<size { to[output] = from[output] }
                    }
                }
            }
        }
    }

    /// A depthwise filter with a channel multiplier m ([groups][taps][m]) as the plain depthwise
    /// filter over its groups·m outputs, [taps][output channels], which the NHWC kernel reads.
    private static func channelMultiplierTapMajor(of storage: WeightStorage, taps: Int, outputChannels: Int,
                                                  groups: Int) -> WeightStorage {
        let multiplier = outputChannels / groups
        return storage.withUnsafeBufferPointer { packed in
            WeightStorage(count: taps * outputChannels) { transposed in
                guard let source = packed.baseAddress, let target = transposed.baseAddress,
                      packed.count == taps * outputChannels else { return }
                for group in 0..<groups {
                    for tap in 0..<taps {
                        for copy in 0..<multiplier {
                            target[tap * outputChannels + group * multiplier + copy] = source[(group * taps + tap) * multiplier + copy]
                        }
                    }
                }
            }
        }
    }

    /// Throws unless the dimensions describe a packing; returns its element count.
    private static func validatedCount(kernel: Size2D, inputChannelsPerGroup: Int, outputChannels: Int,
                                       groups: Int) throws -> Int {
        let name = "conv2d weights"
        try require(kernel.height > 0 && kernel.width > 0 && inputChannelsPerGroup > 0 && outputChannels > 0,
                    name, "kernel \(kernel), \(inputChannelsPerGroup) inputs per group, \(outputChannels) outputs")
        try require(groups > 0 && outputChannels % groups == 0, name,
                    "groups \(groups) must divide output channels \(outputChannels)")
        return try elementCount([kernel.height, kernel.width, inputChannelsPerGroup, outputChannels], name)
    }

    public var outputChannelsPerGroup: Int { outputChannels / groups }
    var reductionLength: Int { kernel.height * kernel.width * inputChannelsPerGroup }

    /// From Keras's HWIO kernel `[kh, kw, in/groups, out]`.
    public init(hwio: UnsafeBufferPointer<Float>, kernel: Size2D, inputChannelsPerGroup: Int,
                outputChannels: Int, groups: Int = 1, context: KernelContext = .singleThreaded) throws {
        try self.init(source: hwio, kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                      outputChannels: outputChannels, groups: groups, context: context,
                      strides: (row: kernel.width * inputChannelsPerGroup * outputChannels,
                                column: inputChannelsPerGroup * outputChannels, channel: outputChannels, output: 1))
    }

    /// From ONNX's OIHW kernel `[out, in/groups, kh, kw]`.
    public init(oihw: UnsafeBufferPointer<Float>, kernel: Size2D, inputChannelsPerGroup: Int,
                outputChannels: Int, groups: Int = 1, context: KernelContext = .singleThreaded) throws {
        try self.init(source: oihw, kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                      outputChannels: outputChannels, groups: groups, context: context,
                      strides: (row: kernel.width, column: 1, channel: kernel.height * kernel.width,
                                output: inputChannelsPerGroup * kernel.height * kernel.width))
    }

    /// Shared packing loop: tap (row, column) of the filter from input channel c to output o is
    /// source[row·s.row + column·s.column + c·s.channel + o·s.output].
    /// It is a transpose, run in tiles of 16 input channels × 16 output channels so both sides
    /// stay within a few pages: an OIHW tile reads 16 filters' consecutive taps and writes 64-byte
    /// runs of the destination rows, and the next output tile writes the next runs of the same
    /// rows (walking whole rows or whole columns instead missed the TLB on every few elements).
    /// Channel tiles are split across `context`'s threads.
    private init(source: UnsafeBufferPointer<Float>, kernel: Size2D, inputChannelsPerGroup: Int,
                 outputChannels: Int, groups: Int, context: KernelContext,
                 strides: (row: Int, column: Int, channel: Int, output: Int)) throws {
        let name = "conv2d weights"
        let count = try Self.validatedCount(kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                            outputChannels: outputChannels, groups: groups)
        try requireCapacity(source.count, count, name, "kernel")
        let perGroup = outputChannels / groups
        let reduction = kernel.height * kernel.width * inputChannelsPerGroup
        let tile = 16
        let channelTiles = (inputChannelsPerGroup + tile - 1) / tile
        self.storage = WeightStorage(count: count) { destination in
            guard let source = source.baseAddress, let destination = destination.baseAddress else { return }
            let work = max(1, kernel.height * kernel.width * tile * perGroup)
            context.forEachChunk(groups * channelTiles, minimumChunk: max(1, parallelGrain / work)) { items in
                for item in items {
                    let group = item / channelTiles
                    let channels = (item % channelTiles) * tile..<min((item % channelTiles + 1) * tile, inputChannelsPerGroup)
                    for first in stride(from: 0, to: perGroup, by: tile) {
                        let width = min(tile, perGroup - first)
                        let output = group * perGroup + first
                        for channel in channels {
                            for row in 0..<kernel.height {
                                for column in 0..<kernel.width {
                                    let k = (row * kernel.width + column) * inputChannelsPerGroup + channel
                                    let target = destination + (group * reduction + k) * perGroup + first
                                    let tap = source + row * strides.row + column * strides.column
                                        + channel * strides.channel + output * strides.output
                                    for lane in 0..<width { target[lane] = tap[lane * strides.output] }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.kernel = kernel
        self.inputChannelsPerGroup = inputChannelsPerGroup
        self.outputChannels = outputChannels
        self.groups = groups
        tapMajor = Self.tapMajor(of: storage, kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                          outputChannels: outputChannels, groups: groups)
    }

    /// Throws unless these weights were packed for `geometry`.
    func check(against geometry: Conv2DGeometry) throws {
        try Self.check(kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup, outputChannels: outputChannels,
                       groups: groups, against: geometry)
    }

    /// Throws unless a filter of these extents fits `geometry`.
    static func check(kernel: Size2D, inputChannelsPerGroup: Int, outputChannels: Int, groups: Int,
                      against geometry: Conv2DGeometry) throws {
        try require(kernel == geometry.kernel && inputChannelsPerGroup == geometry.inputChannelsPerGroup
                        && outputChannels == geometry.outputChannels && groups == geometry.groups,
                    "conv2d", "weights (kernel \(kernel), \(inputChannelsPerGroup)x\(groups) in, \(outputChannels) out) "
                        + "do not match the geometry (kernel \(geometry.kernel), \(geometry.inputChannels) in, "
                        + "\(geometry.outputChannels) out, \(geometry.groups) groups)")
    }
}
