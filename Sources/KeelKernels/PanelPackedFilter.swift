/// A filter matrix cut once, at prepare time, into the strips Keel's panel GEMM streams, so each
/// product reads its filter sequentially. Read in place from a row-major [K][outputs] matrix, every
/// depth step of the GEMM fetched one short run at a stride of a whole filter row, which missed
/// the L1 sets and the TLB: VGG16's 14×14 layers ran a third slower than on OpenBLAS's packing.
///
/// As the right operand (NHWC convolutions, dense layers: channels are the output's columns) a
/// strip is a 32-column panel in the layout the CPU's GEMM reads fastest (`PanelLayout`); as
/// the left operand (NCHW convolutions: the filter read as
/// Wᵀ, channels are the output's rows) a block of as many output channels as the GEMM multiplies
/// at once, [K][rows]. The last strip of each group is zero-padded.
import CSIMDKernels

public struct PanelPackedFilter: Sendable, Equatable {
    /// Which operand of C = A·B the filter is.
    public enum Operand: Sendable, Equatable {
        /// B: output channels are C's columns.
        case right
        /// A (as Wᵀ): output channels are C's rows.
        case left
    }

    public let operand: Operand
    /// K: the reduction length of one group.
    public let depth: Int
    /// Output channels of one group.
    public let columns: Int
    public let groups: Int
    /// Output channels per strip: 32 on the right, the GEMM's row block on the left.
    public let stripWidth: Int
    /// Whether each right-hand strip is stored as two [depth][16] halves.
    public let splitHalves: Bool
    /// [groups][strips][depth][stripWidth], or [groups][strips][2][depth][16] with split halves.
    let storage: WeightStorage

    var strips: Int { (columns + stripWidth - 1) / stripWidth }
    /// The right-hand panels' layout.
    var layout: PanelLayout { PanelLayout(depth: depth, splitHalves: splitHalves) }
    var groupCount: Int { strips * depth * stripWidth }

    /// The strip width `operand` gets on this CPU's GEMM.
    static func stripWidth(for operand: Operand) -> Int {
        switch operand {
        case .right: return PanelGEMM.panel
        case .left:
            let rows = Int(KernelTable.current.sgemm_rows)
            return rows > 0 ? rows : 8
        }
    }

    /// Packs the matrix whose element (group g, depth p, output j) is
    /// source[g·groupStride + p·depthStride + j·outputStride].
    init(source: UnsafePointer<Float>, depth: Int, columns: Int, groups: Int, groupStride: Int, depthStride: Int,
         outputStride: Int, operand: Operand, context: KernelContext) throws {
        let name = "panel-packed filter"
        try require(depth >= 0 && columns > 0 && groups > 0, name,
                    "depth \(depth), \(columns) outputs per group, \(groups) groups")
        let width = Self.stripWidth(for: operand)
        let split = operand == .right && PanelLayout(depth: depth).splitHalves
        let layout = PanelLayout(depth: depth, splitHalves: split)
        let strips = (columns + width - 1) / width
        let perGroup = try elementCount([strips, max(depth, 1), width], name)
        let count = try elementCount([groups, perGroup], name)
        self.storage = WeightStorage(count: count) { destination in
            guard let destination = destination.baseAddress else { return }
            let stripCount = strips * width * max(depth, 1)
            context.forEachChunk(groups * strips, minimumChunk: max(1, parallelGrain / stripCount)) { items in
                for item in items {
                    let (group, strip) = (item / strips, item % strips)
                    let target = destination + group * perGroup + strip * depth * width
                    let first = strip * width
                    let used = min(width, columns - first)
                    let origin = source + group * groupStride + first * outputStride
                    if split {
                        if used < width { target.update(repeating: 0, count: width * depth) }
                        for lane in 0..<used {
                            let run = origin + lane * outputStride
                            for p in 0..<depth {
                                target[layout.offset(depth: p, column: lane)] = run[p * depthStride]
                            }
                        }
                    } else if outputStride == 1 {
                        // Row-major source: each depth's run is contiguous.
                        for p in 0..<depth {
                            let line = target + p * width
                            line.update(from: origin + p * depthStride, count: used)
                            (line + used).update(repeating: 0, count: width - used)
                        }
                    } else {
                        // Transposed source ([outputs][K], a PyTorch Linear): read each output's run.
                        for lane in 0..<width {
                            guard lane < used else {
                                for p in 0..<depth { target[p * width + lane] = 0 }
                                continue
                            }
                            let run = origin + lane * outputStride
                            for p in 0..<depth { target[p * width + lane] = run[p * depthStride] }
                        }
                    }
                }
            }
        }
        self.operand = operand
        self.depth = depth
        self.columns = columns
        self.groups = groups
        self.stripWidth = width
        self.splitHalves = split
    }

    /// One group of right-operand panels stored earlier (split into halves or not), used in place
    /// while `owner` lives.
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, depth: Int, columns: Int,
         splitHalves: Bool) throws {
        let width = Self.stripWidth(for: .right)
        let count = try elementCount([(columns + width - 1) / width, max(depth, 1), width], "panel-packed filter")
        try require(depth > 0 && columns > 0 && values.count == count && values.baseAddress != nil,
                    "panel-packed filter", "\(values.count) values given, \(count) expected for \(depth)x\(columns)")
        operand = .right
        self.depth = depth
        self.columns = columns
        groups = 1
        stripWidth = width
        self.splitHalves = splitHalves
        storage = WeightStorage(borrowing: values, owner: owner)
    }

    /// Writes the original matrix back, row-major [groups][depth][columns].
    func unpack(into destination: UnsafeMutablePointer<Float>) {
        storage.withUnsafeBufferPointer { values in
            guard let packed = values.baseAddress else { return }
            for group in 0..<groups {
                for strip in 0..<strips {
                    let first = strip * stripWidth, used = min(stripWidth, columns - first)
                    let origin = packed + group * groupCount + strip * depth * stripWidth
                    for p in 0..<depth {
                        let row = destination + (group * depth + p) * columns + first
                        guard splitHalves else {
                            row.update(from: origin + p * stripWidth, count: used)
                            continue
                        }
                        for lane in 0..<used {
                            row[lane] = origin[layout.offset(depth: p, column: lane)]
                        }
                    }
                }
            }
        }
    }

    /// Group 0's right-hand panels with every depth row p multiplied by `scales[p]`, written to
    /// `destination` (`groupCount` floats) in the same layout: x·diag(s)·W computed as x·(diag(s)·W),
    /// for a per-image gate on a pointwise convolution's input channels. Both layouts are runs of
    /// one depth row's columns, depth after depth ([depth][32], or [2][depth][16] split), so run
    /// i belongs to depth i mod depth.
    func scalingDepthRows(_ base: UnsafePointer<Float>, by scales: UnsafePointer<Float>,
                          into destination: UnsafeMutablePointer<Float>) {
        guard operand == .right, depth > 0 else { return }
        let run = splitHalves ? PanelLayout.half : stripWidth
        for index in 0..<groupCount / run {
            let factor = scales[index % depth]
            let (from, to) = (base + index * run, destination + index * run)
            for lane in 0..<run { to[lane] = from[lane] * factor }
        }
    }

    /// This group's strips as the GEMM's right operand; valid while `base` is.
    func right(_ base: UnsafePointer<Float>, group: Int) -> keel_gemm_right {
        layout.right(base + group * groupCount)
    }

    /// This group's strips as the GEMM's left operand (read as Wᵀ); valid while `base` is.
    func left(_ base: UnsafePointer<Float>, group: Int) -> keel_gemm_left {
        keel_gemm_left(base: base + group * groupCount, row_step: 1, depth_step: stripWidth, block_rows: stripWidth,
                       block_step: depth * stripWidth)
    }
}

/// Convolution weights in the panel GEMM's layout, for the pointwise and im2col algorithms: the
/// form a model prepares once for those layers. The operand follows the activation layout (NHWC:
/// right, NCHW: left), so these weights serve one layout.
public struct PanelConv2DWeights: Sendable, Equatable {
    public let kernel: Size2D
    public let inputChannelsPerGroup: Int
    public let outputChannels: Int
    public let groups: Int
    public let layout: ActivationLayout
    let filter: PanelPackedFilter

    /// Repacks `packed` for convolutions over `layout` activations.
    public init(_ packed: PackedConv2DWeights, layout: ActivationLayout, context: KernelContext = .singleThreaded) throws {
        kernel = packed.kernel
        inputChannelsPerGroup = packed.inputChannelsPerGroup
        outputChannels = packed.outputChannels
        groups = packed.groups
        self.layout = layout
        let (depth, columns) = (packed.reductionLength, packed.outputChannelsPerGroup)
        filter = try packed.withUnsafeValues { values in
            guard let base = values.baseAddress else {
                throw KernelError.invalidArgument(kernel: "conv2d weights", message: "no values to pack")
            }
            return try PanelPackedFilter(source: base, depth: depth, columns: columns, groups: packed.groups,
                                         groupStride: depth * columns, depthStride: columns, outputStride: 1,
                                         operand: layout == .nhwc ? .right : .left, context: context)
        }
    }

    /// The same weights in the row-major packing (what compiled model files store and the other
    /// algorithms derive their forms from).
    public func rowMajor() -> PackedConv2DWeights {
        let storage = WeightStorage(count: filter.groups * filter.depth * filter.columns) { values in
            if let base = values.baseAddress { filter.unpack(into: base) }
        }
        return PackedConv2DWeights(validated: storage, kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                   outputChannels: outputChannels, groups: groups)
    }

    /// Extra scratch floats a pointwise convolution needs to gate its input channels (`Conv2D.apply`'s
    /// `inputScales`): one copy of the filter.
    public var inputScaleScratchSize: Int { filter.groupCount }

    /// Throws unless these weights were packed for `geometry`.
    func check(against geometry: Conv2DGeometry) throws {
        try PackedConv2DWeights.check(kernel: kernel, inputChannelsPerGroup: inputChannelsPerGroup,
                                      outputChannels: outputChannels, groups: groups, against: geometry)
        try require(layout == geometry.layout, "conv2d",
                    "weights packed for \(layout) activations, the geometry is \(geometry.layout)")
    }
}
