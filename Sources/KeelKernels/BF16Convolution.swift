/// Convolutions (one group, NHWC) and dense layers whose products run in bf16 with fp32
/// accumulation: AMX tiles where Linux granted them, otherwise AVX512_BF16 (the kernel table's
/// `bf16_conv`). Filters are rounded to bf16 and packed once (`BF16Weights`); an fp32 input is
/// rounded as each block of im2col rows (or window of the direct form) is built, a bf16 one (a
/// previous bf16 layer's output) is read as it is. Bias, residual and activation are applied in
/// fp32 before the store, which rounds to bf16 when the plan keeps the output in bf16.
import CSIMDKernels

/// A [depth][columns] filter rounded to bf16 (nearest even) in the tile layout the bf16 kernels
/// read (CSIMDKernels `keel_bf16_pack`).
public struct BF16Weights: Sendable, Equatable {
    /// Reduction length: kernel height · width · input channels (a dense layer's input features).
    public let depth: Int
    /// Output channels.
    public let columns: Int
    /// The bf16 values, two per float slot (the storage type prepared weights share).
    let storage: WeightStorage

    /// bf16 elements for a [depth][columns] filter, padding included.
    public static func elementCount(depth: Int, columns: Int) -> Int { keel_bf16_packed_count(depth, columns) }

    /// From fp32 element (k, n) at `values[k · depthStride + n · columnStride]`. `splitInput`: for
    /// a layer whose input the kernel splits in two bf16 terms (`BF16Convolution.splitsInput`), the
    /// filter twice over, so `depth` becomes 2 · depth.
    public init(_ values: UnsafeBufferPointer<Float>, depth: Int, columns: Int, depthStride: Int, columnStride: Int,
                splitInput: Bool = false) throws {
        let name = "bf16 weights"
        try require(depth > 0 && columns > 0, name, "depth \(depth) and \(columns) columns")
        try requireCapacity(values.count, (depth - 1) * depthStride + (columns - 1) * columnStride + 1, name, "filter")
        if splitInput {
            // Rows k and depth + k both hold filter row k, gathered [2 · depth][columns].
            var twice = [Float](repeating: 0, count: 2 * depth * columns)
            for k in 0..<depth {
                for n in 0..<columns {
                    twice[k * columns + n] = values[k * depthStride + n * columnStride]
                    twice[(depth + k) * columns + n] = values[k * depthStride + n * columnStride]
                }
            }
            self = try twice.withUnsafeBufferPointer { doubled in
                try BF16Weights(doubled, depth: 2 * depth, columns: columns, depthStride: columns, columnStride: 1)
            }
            return
        }
        self.depth = depth
        self.columns = columns
        let count = Self.elementCount(depth: depth, columns: columns)
        storage = WeightStorage(count: count / 2) { slots in
            guard let source = values.baseAddress, let target = slots.baseAddress else { return }
            target.withMemoryRebound(to: UInt16.self, capacity: count) { packed in
                keel_bf16_pack(source, depth, columns, depthStride, columnStride, packed)
            }
        }
    }

    /// From the im2col packing of a one-group filter ([K][outputs]), twice over when the kernel
    /// splits this layer's input.
    public init(_ packed: PackedConv2DWeights) throws {
        try require(packed.groups == 1, "bf16 weights", "\(packed.groups) groups (bf16 runs one-group convolutions)")
        self = try packed.withUnsafeValues { values in
            try BF16Weights(values, depth: packed.reductionLength, columns: packed.outputChannels,
                            depthStride: packed.outputChannels, columnStride: 1,
                            splitInput: BF16Convolution.splitsInput(inputChannels: packed.inputChannelsPerGroup))
        }
    }

    /// Values kept elsewhere (a compiled model file), used in place while `owner` lives.
    public init(borrowing slots: UnsafeBufferPointer<Float>, owner: AnyObject, depth: Int, columns: Int) throws {
        try require(depth > 0 && columns > 0 && slots.count * 2 == Self.elementCount(depth: depth, columns: columns),
                    "bf16 weights", "\(slots.count * 2) bf16 values for a \(depth)×\(columns) filter")
        self.depth = depth
        self.columns = columns
        storage = WeightStorage(borrowing: slots, owner: owner)
    }

    /// The stored slots (two bf16 values each), valid inside `body`.
    public func withUnsafeSlots<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }
}

/// How a plan stores an activation tensor: fp32, or rounded to bf16 (nearest even) where only
/// bf16 layers read it, which halves its memory traffic and spares each reader its rounding pass.
public enum ActivationStorage: String, Sendable, Codable {
    case fp32
    case bf16
}

public enum BF16Convolution {
    /// Whether a bf16 kernel runs on this CPU (capabilities in use).
    public static var isAvailable: Bool { KernelTable.current.bf16_conv != nil }

    /// Whether the bf16 kernel computes this convolution: one group, NHWC.
    public static func supports(_ geometry: Conv2DGeometry) -> Bool { geometry.groups == 1 && geometry.layout == .nhwc }

    /// Whether the kernel splits each input value in two bf16 terms (`keel_bf16_conv.split_input`),
    /// reading its filter twice over: a layer with few input channels (an RGB first layer, a dense
    /// layer of a few features), whose values bf16 alone would keep to 8 bits (steps of 1 above
    /// 128, which cut VGG16's classifier agreement on samples/ from cosine 0.99996 to 0.976 when
    /// tried), at a cost its short depth keeps small.
    public static func splitsInput(inputChannels: Int) -> Bool {
        inputChannels <= DirectConvolution.maximumPreferredInputChannels
    }

    /// The depth of the bf16 filter this geometry reads: its reduction length, twice that when
    /// the kernel splits the input.
    public static func filterDepth(for geometry: Conv2DGeometry) -> Int {
        geometry.reductionLength * (splitsInput(inputChannels: geometry.inputChannels) ? 2 : 1)
    }

    /// "direct" when the direct form runs this geometry (AMX, stride 1, input channels a multiple
    /// of 32), "im2col" otherwise.
    public static func form(for geometry: Conv2DGeometry) -> String { runsDirect(geometry) ? "direct" : "im2col" }

    /// A dense layer as the bf16 kernels see it: the 1×1 convolution of `rows` one-pixel images.
    public static func denseGeometry(rows: Int, inFeatures: Int, outFeatures: Int) -> Conv2DGeometry {
        Conv2DGeometry(batch: rows, input: Size2D(1, 1), inputChannels: inFeatures, outputChannels: outFeatures,
                       kernel: Size2D(1, 1))
    }

    /// The instruction set that computes this geometry's products: "AMX-BF16", or "AVX512_BF16"
    /// (no AMX here, or a few pixels in all, which AMX's 16-row tiles would mostly pad).
    public static func instructionSet(for geometry: Conv2DGeometry) -> String {
        var description = parameters(geometry, input: nil, weights: nil, bias: nil, activation: .identity, output: nil)
        return CPUCapabilities.inUse.contains(.amxBF16) && keel_bf16_vector_fits(&description) == 0 ? "AMX-BF16" : "AVX512_BF16"
    }

    /// Whether bf16 products are expected to take less time than `fp32Algorithm` on this layer.
    /// AMX multiplies bf16 many times faster than fp32 FMA: always. AVX512_BF16 only doubles the
    /// products an instruction does (vdpbf16ps against vfmadd231ps: 218 against 108 GFLOP/s a
    /// core on Zen 4), which Winograd F(4×4)'s four times fewer products, or a split input's twice
    /// as many (`vectorProducts`), outweigh: such layers measured faster in fp32 (VGG16's 3×3
    /// layers 1.6×, its RGB layer 1.65×, ResNet50's 28×28 3×3 layers 1.3–1.5×), which is also
    /// exact to more bits.
    public static func isFaster(than fp32Algorithm: Conv2DAlgorithm, for geometry: Conv2DGeometry) -> Bool {
        if instructionSet(for: geometry) == "AMX-BF16" { return true }
        let products = vectorProducts(geometry)
        return fp32Algorithm != .winograd(.large) && products.bf16 < products.fp32
    }

    /// Vector multiply-adds per output pixel, each for every 16 columns: the AVX512_BF16 kernel's
    /// vdpbf16ps (one per pair of filter depths, twice the depth for a split input; the padding to
    /// whole 32-deep tiles is skipped) and the fp32 GEMM's FMAs (one per depth).
    public static func vectorProducts(_ geometry: Conv2DGeometry) -> (bf16: Int, fp32: Int) {
        let vectors = (geometry.outputChannels + 15) / 16
        return ((filterDepth(for: geometry) + 1) / 2 * vectors, geometry.reductionLength * vectors)
    }

    /// Whether `apply` can fuse a following 2×2 stride-2 max pool: the direct form pools in its
    /// epilogue, so the full-size output is never stored.
    public static func poolsInKernel(_ geometry: Conv2DGeometry) -> Bool { runsDirect(geometry) }

    private static func runsDirect(_ geometry: Conv2DGeometry) -> Bool {
        var description = parameters(geometry, input: nil, weights: nil, bias: nil, activation: .identity, output: nil)
        return KernelTable.current.bf16_conv_direct != nil && keel_bf16_direct_fits(&description) != 0
    }

    /// Floats of scratch `apply` needs with up to `threads` threads, whichever form runs.
    public static func scratchSize(for geometry: Conv2DGeometry, threads: Int) -> Int {
        var description = parameters(geometry, input: nil, weights: nil, bias: nil, activation: .identity, output: nil)
        let im2col = slotFloats(keel_bf16_conv_scratch_bytes(&description))
        // A fused pool only shrinks the direct form's window; without one it is the larger.
        let direct = keel_bf16_direct_fits(&description) != 0 ? slotFloats(keel_bf16_direct_scratch_bytes(&description)) : 0
        return max(1, threads) * max(im2col, direct) + alignmentSlack
    }

    /// Floats the start of scratch may move to reach a 64-byte boundary (AMX stages tiles there).
    private static let alignmentSlack = 16

    /// Floats per thread's scratch slot: whole 64-byte lines, so every slot stays aligned.
    private static func slotFloats(_ bytes: Int) -> Int { (bytes + 63) / 64 * 16 }

    /// Whether `apply` takes `inputScales` for this layer: a 1×1 stride-1 unpadded layer whose
    /// input is not split (a squeeze-excitation gate before a projection), on a CPU whose
    /// AVX512_BF16 rescales the packed filter.
    public static func gatesInput(_ geometry: Conv2DGeometry) -> Bool {
        KernelTable.current.bf16_scale_depth != nil && supports(geometry) && geometry.kernel == Size2D(1, 1)
            && geometry.stride == Size2D(1, 1) && geometry.dilation == Size2D(1, 1) && geometry.padding == .zero
            && !splitsInput(inputChannels: geometry.inputChannels)
    }

    /// Floats of scratch `apply` needs beyond `scratchSize` for `inputScales`: one image's scaled
    /// copy of the packed filter, on whole 64-byte lines.
    public static func inputScaleScratchSize(for geometry: Conv2DGeometry) -> Int {
        slotFloats(2 * keel_bf16_packed_count(filterDepth(for: geometry), geometry.outputChannels))
    }

    /// Whether `apply` can store this activation's results in bf16: the kernel applies every
    /// activation `KernelEpilogue` fuses before its store; others take an fp32 pass over the output.
    public static func storesBF16(after activation: UnaryOperation) -> Bool {
        KernelEpilogue.fusedActivation(activation) != nil
    }

    /// Float slots a tensor of `elements` values takes in `storage` (bf16: two values a slot).
    public static func slots(_ elements: Int, in storage: ActivationStorage) -> Int {
        storage == .bf16 ? (elements + 1) / 2 : elements
    }

    /// output = activation(conv(input, weights) + bias + residual) with bf16 products, then a 2×2
    /// stride-2 max pool (floor mode) when `maxPooled` (only where `poolsInKernel`, without a
    /// residual). `inputStorage` / `outputStorage` / `residualStorage` `.bf16`: that buffer holds
    /// bf16 values, two per float slot (an output only after an activation the kernel fuses).
    /// `inputScales` ([batch][input channels], where `gatesInput`) multiplies each image's input
    /// channels first, as EfficientNet's squeeze-excitation gate does: each image runs on its own
    /// copy of the filter with depth row c scaled by its gate c and rounded to bf16 again
    /// (`scratch` then needs `inputScaleScratchSize` more floats), so the gated activations are
    /// never written. Throws when no bf16 kernel is present or the geometry is not one it runs
    /// (callers check first).
    public static func apply(input: UnsafeBufferPointer<Float>, weights: BF16Weights, bias: UnsafeBufferPointer<Float>?,
                             residual: UnsafeBufferPointer<Float>? = nil,
                             activation: UnaryOperation, output: UnsafeMutableBufferPointer<Float>,
                             geometry: Conv2DGeometry, scratch: UnsafeMutableBufferPointer<Float>,
                             maxPooled: Bool = false, inputStorage: ActivationStorage = .fp32,
                             outputStorage: ActivationStorage = .fp32, residualStorage: ActivationStorage = .fp32,
                             inputScales: UnsafeBufferPointer<Float>? = nil, context: KernelContext) throws {
        let name = "conv2d (bf16)"
        try geometry.validate()
        guard let kernel = KernelTable.current.bf16_conv else {
            throw KernelError.invalidArgument(kernel: name, message: "this CPU has neither AMX-BF16 nor AVX512_BF16")
        }
        try require(supports(geometry), name, "bf16 runs one-group NHWC convolutions")
        try require(weights.depth == filterDepth(for: geometry) && weights.columns == geometry.outputChannels, name,
                    "weights are \(weights.depth)×\(weights.columns), the layer needs "
                        + "\(filterDepth(for: geometry))×\(geometry.outputChannels)")
        try requireCapacity(input.count, slots(geometry.inputElementCount, in: inputStorage), name, "input")
        try require(outputStorage == .fp32 || storesBF16(after: activation), name,
                    "a bf16 output takes an activation the kernel fuses, not \(activation)")
        if maxPooled {
            try require(poolsInKernel(geometry), name, "a fused max pool needs the direct form (AMX, stride 1, "
                            + "input channels a multiple of 32)")
            // A pooled activation other than ReLU would not commute with the maximum.
            try require(activation == .identity || activation == .relu, name, "a fused max pool takes ReLU or no activation")
            try require(residual == nil, name, "a fused max pool takes no residual")
        }
        let pooledPixels = geometry.batch * (geometry.output.height / 2) * (geometry.output.width / 2)
        try requireCapacity(output.count, slots(maxPooled ? pooledPixels * geometry.outputChannels
                                                          : geometry.outputElementCount, in: outputStorage),
                            name, "output")
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        if let residual {
            try requireCapacity(residual.count, slots(geometry.outputElementCount, in: residualStorage), name, "residual")
        }
        var gateScratch = 0
        if let inputScales {
            try require(gatesInput(geometry) && !maxPooled, name, "an input gate needs AVX512_BF16 and a 1×1 stride-1 "
                            + "unpadded layer, unpooled")
            try requireCapacity(inputScales.count, geometry.batch * geometry.inputChannels, name, "input channel scales")
            gateScratch = inputScaleScratchSize(for: geometry)
        }
        var description = parameters(geometry, input: input.baseAddress, weights: nil, bias: bias?.baseAddress,
                                     activation: activation, output: output.baseAddress)
        description.pool = maxPooled ? 1 : 0
        if residualStorage == .bf16, let base = residual?.baseAddress {
            description.bf16_residual = UnsafeRawPointer(base).assumingMemoryBound(to: UInt16.self)
        } else {
            description.residual = residual?.baseAddress
        }
        if inputStorage == .bf16, let base = input.baseAddress {
            description.bf16_input = UnsafeRawPointer(base).assumingMemoryBound(to: UInt16.self)
        }
        if outputStorage == .bf16, let base = output.baseAddress {
            description.bf16_output = UnsafeMutableRawPointer(base).assumingMemoryBound(to: UInt16.self)
        }
        let table = KernelTable.current
        // A gated layer runs image by image, each on its own filter: im2col, whose rows are pixels.
        let direct = inputScales != nil ? nil
            : table.bf16_conv_direct.flatMap { keel_bf16_direct_fits(&description) != 0 ? $0 : nil }
        let slot = slotFloats(direct == nil ? keel_bf16_conv_scratch_bytes(&description)
                                            : keel_bf16_direct_scratch_bytes(&description))
        try requireCapacity(scratch.count, gateScratch + slot + alignmentSlack, name, "scratch")
        guard geometry.batch > 0, let base = scratch.baseAddress, let destination = output.baseAddress else { return }
        let skip = (64 - Int(bitPattern: base) % 64) % 64 / MemoryLayout<Float>.stride
        let gatedFilter = UnsafeMutableRawPointer(base + skip).assumingMemoryBound(to: UInt16.self)
        let workspace = base + skip + gateScratch
        let images = inputScales == nil ? 1 : geometry.batch
        var callGeometry = geometry
        callGeometry.batch /= images
        let pixels = callGeometry.batch * geometry.outputPixelsPerImage
        let work = Double(pixels) * Double(geometry.outputChannels) * Double(geometry.reductionLength)
        let threads = min(work < Double(64 * parallelGrain) ? 1 : context.threads,
                          (scratch.count - skip - gateScratch) / slot, 64)
        description.batch = callGeometry.batch
        let kernelRows = direct == nil ? pixels : keel_bf16_direct_rows(&description)
        let rowStep = direct == nil ? 32 : 1
        let grid = unitGrid(callGeometry, steps: (kernelRows + rowStep - 1) / rowStep, threads: threads,
                            direct: direct != nil)
        let (inputStep, outputStep) = (callGeometry.inputElementCount, callGeometry.outputElementCount)
        weights.storage.withUnsafeBufferPointer { slots in
            slots.baseAddress?.withMemoryRebound(to: UInt16.self, capacity: slots.count * 2) { packed in
                for image in 0..<images {
                    var call = description
                    call.weights = packed
                    if let scales = inputScales?.baseAddress, let scale = table.bf16_scale_depth {
                        scale(packed, weights.depth, weights.columns, scales + image * geometry.inputChannels, gatedFilter)
                        call.weights = UnsafePointer(gatedFilter)
                    }
                    call.input = call.input.map { $0 + image * inputStep }
                    call.bf16_input = call.bf16_input.map { $0 + image * inputStep }
                    call.output = call.output.map { $0 + image * outputStep }
                    call.bf16_output = call.bf16_output.map { $0 + image * outputStep }
                    call.residual = call.residual.map { $0 + image * outputStep }
                    call.bf16_residual = call.bf16_residual.map { $0 + image * outputStep }
                    keel_bf16_run_units(&call, direct ?? kernel, kernelRows, rowStep, grid.rows, grid.columns,
                                        UnsafeMutableRawPointer(workspace), slot * MemoryLayout<Float>.stride, threads)
                }
            }
        }
        let remaining = KernelEpilogue(activation: activation).remainingActivation
        if remaining != .identity {
            let block = OutputBlock(base: destination, rows: geometry.batch * geometry.outputPixelsPerImage, columns: geometry.outputChannels,
                                    rowStride: geometry.outputChannels)
            applyEpilogue(block, bias: nil, direction: .perColumn, activation: remaining, context: context)
        }
    }

    /// Units per thread: enough that a thread on a faster core (this host's two cores differed up
    /// to 4× in AMX throughput from one process to the next) takes over part of a slower one's
    /// share, few enough that the extra passes stay small.
    private static let unitsPerThread = 4

    /// What building a byte of bf16 input (padding a window, or im2col rows) costs against
    /// streaming a byte of filter, measured on VGG16's 28×28 and 14×14 512-channel layers: a
    /// copy into a fresh window is about eight times dearer than a filter read the prefetchers
    /// stream from L3.
    private static let inputByteCost = 8.0

    /// Row parts × column parts of `steps` row steps and the 32-column blocks for `threads`: at
    /// least `unitsPerThread` units a thread where the layer has them, at the fewest bytes moved.
    /// Each row part streams its columns of the filter once per window of rows (L2 holds about a
    /// megabyte of input rows, `KEEL_BF16_BLOCK_BYTES`); each column part builds its rows' bf16
    /// input again. So a deep layer with few pixels splits its columns too, a shallow one with many
    /// rows only its rows.
    static func unitGrid(_ geometry: Conv2DGeometry, steps: Int, threads: Int, direct: Bool) -> (rows: Int, columns: Int) {
        let columnBlocks = (geometry.outputChannels + 31) / 32
        guard threads > 1, steps > 0 else { return (1, 1) }
        let pixels = Double(geometry.batch * geometry.outputPixelsPerImage)
        let inputBytes = direct ? Double(geometry.inputElementCount) * 2 : pixels * Double(geometry.reductionLength) * 2
        let filterBytes = Double(geometry.reductionLength) * Double(geometry.outputChannels) * 2
        let windows = Int((inputBytes / Double(1 << 20)).rounded(.up))
        let wanted = min(unitsPerThread * threads, steps * columnBlocks)
        var best = (rows: steps, columns: columnBlocks, cost: Double.infinity)
        for rows in 1...steps {
            let columns = min(columnBlocks, (wanted + rows - 1) / rows)
            guard rows * columns >= wanted else { continue }
            let cost = Double(max(rows, windows)) * filterBytes + Double(columns) * inputByteCost * inputBytes
            if cost < best.cost { best = (rows, columns, cost) }
            if columns == 1 { break }
        }
        return (best.rows, best.columns)
    }

    private static func parameters(_ geometry: Conv2DGeometry, input: UnsafePointer<Float>?,
                                   weights: UnsafePointer<UInt16>?, bias: UnsafePointer<Float>?,
                                   activation: UnaryOperation, output: UnsafeMutablePointer<Float>?) -> keel_bf16_conv {
        let outputSize = geometry.output
        let (kind, first, second) = KernelEpilogue.fusedActivation(activation) ?? (KEEL_ACTIVATION_NONE, 0, 0)
        return keel_bf16_conv(
            input: input, weights: weights, bias: bias, residual: nil, output: output, batch: geometry.batch,
            input_height: geometry.input.height, input_width: geometry.input.width,
            input_channels: geometry.inputChannels,
            output_height: outputSize.height, output_width: outputSize.width, output_channels: geometry.outputChannels,
            kernel_height: geometry.kernel.height, kernel_width: geometry.kernel.width,
            stride_height: geometry.stride.height, stride_width: geometry.stride.width,
            dilation_height: geometry.dilation.height, dilation_width: geometry.dilation.width,
            pad_top: geometry.padding.top, pad_left: geometry.padding.left, activation: kind,
            parameter0: first, parameter1: second, pool: 0,
            bf16_input: nil, bf16_output: nil, bf16_residual: nil,
            split_input: splitsInput(inputChannels: geometry.inputChannels) ? 1 : 0)
    }
}
