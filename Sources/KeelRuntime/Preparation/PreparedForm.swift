import KeelKernels

/// A form a frozen weight is prepared in for the kernel that reads it. The raw value is the
/// `kind` a .keelc file records.
///
/// Adding a form for a new kernel: a case here (with its key prefix and payload type) and a
/// `PreparedPayload` conformance that says how to prepare, store and read it back.
public enum PreparedForm: String, Codable, Sendable, CaseIterable {
    /// Transformed into the Winograd F(4×4, 3×3) domain, in 32-column panels (`WinogradWeights`).
    case winograd
    /// Transformed into the Winograd F(2×2, 3×3) domain, in 32-column panels (`SmallTileWinogradWeights`).
    case winograd2x2
    /// A 1×k or k×1 filter transformed into the line-Winograd F(4, k) domain, in 32-column panels
    /// (`LineWinogradWeights`).
    case lineWinograd
    /// A 5×5 filter transformed into the F(4×4, 5×5) domain, F(4, 5) along both axes, in 32-column
    /// panels (`SquareWinogradWeights`).
    case squareWinograd
    /// Packed row-major per group, [K][outputs], for direct and depthwise, and as the file form of `panels`
    /// (`PackedConv2DWeights`).
    case packed
    /// Cut into the panel GEMM's strips for pointwise and im2col (`PanelConv2DWeights`). Files store
    /// it as its `packed` form (the strips depend on the CPU's GEMM), which it is rebuilt from.
    case panels
    /// A dense kernel in the panel GEMM's 32-column panels (`PanelDenseWeights`): the fp32 form of
    /// every dense layer. Files store them as they are (the GEMM reads either panel form, so a file
    /// runs anywhere), recording whether the halves are split.
    case densePanels
    /// Rounded to bf16 and packed in the bf16 kernels' tile layout (`BF16Weights`, `--precision bf16`).
    case bf16
    /// A batch norm's four vectors folded into one scale and one shift per channel (`FoldedBatchNorm`).
    case foldedBatchNorm

    /// The type holding this form's values.
    var payloadType: any PreparedPayload.Type {
        switch self {
        case .winograd: return WinogradWeights.self
        case .winograd2x2: return SmallTileWinogradWeights.self
        case .lineWinograd: return LineWinogradWeights.self
        case .squareWinograd: return SquareWinogradWeights.self
        case .packed: return PackedConv2DWeights.self
        case .panels: return PanelConv2DWeights.self
        case .densePanels: return PanelDenseWeights.self
        case .bf16: return BF16Weights.self
        case .foldedBatchNorm: return FoldedBatchNorm.self
        }
    }

    /// Whether a .keelc file stores this form. A folded batch norm is not stored: its four
    /// vectors stay in the file's graph (2·channels floats to fold again at load). Panels are
    /// stored as their `packed` form.
    var isStored: Bool { self != .foldedBatchNorm && self != .panels }

    /// The cache key's text, as .keelc files record it: "winograd:<filter>", "winograd2x2:<filter>",
    /// "linewinograd:<filter>", "squarewinograd:<filter>",
    /// "conv:<filter>", "bf16:<filter>", "dense:<kernel>", "bn:<node>".
    func key(_ source: String) -> String {
        switch self {
        case .winograd: return "winograd:" + source
        case .winograd2x2: return "winograd2x2:" + source
        case .lineWinograd: return "linewinograd:" + source
        case .squareWinograd: return "squarewinograd:" + source
        case .packed: return "conv:" + source
        case .panels: return "panels:" + source
        case .densePanels: return "dense:" + source
        case .bf16: return "bf16:" + source
        case .foldedBatchNorm: return "bn:" + source
        }
    }
}

/// The values of one prepared form: how they are made from their source, and how a .keelc
/// stores them (float32 slots and a few dimensions) and lends them back in place.
protocol PreparedPayload: Sendable {
    static var form: PreparedForm { get }
    /// Prepares the form from the weight's original values, or from another form already held
    /// when the original is gone; throws when neither can give it.
    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self
    /// What rebuilding the values from their slots takes.
    var storedDims: [Int] { get }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R
    /// Values stored earlier, used in place while `owner` lives; throws unless they fit `dims`.
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws
}

/// The stored dimensions' mark of panels split into halves: a third dimension, the half's width.
private let splitPanelMark = 16

private func panelHalvesDims(_ splitHalves: Bool) -> [Int] { splitHalves ? [splitPanelMark] : [] }

/// Whether stored panel dims ([depth, columns], or [depth, columns, 16] for split halves) say split;
/// throws for any other shape.
private func panelDims(_ dims: [Int], _ kernel: String) throws -> Bool {
    guard dims.count == 2 || (dims.count == 3 && dims[2] == splitPanelMark) else {
        throw KernelError.invalidArgument(kernel: kernel, message: "dims \(dims) are not [inputs, outputs] or [inputs, outputs, 16]")
    }
    return dims.count == 3
}

/// Throws unless `dims` has `count` entries; `meaning` names them for the message.
private func requireDims(_ dims: [Int], _ count: Int, _ kernel: String, _ meaning: String) throws {
    guard dims.count == count else { throw KernelError.invalidArgument(kernel: kernel, message: "dims \(dims) are not \(meaning)") }
}

extension WinogradWeights: PreparedPayload {
    static var form: PreparedForm { .winograd }

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        try prepare(source, from: held, tile: .large, context: context)
    }

    /// From the original filter, or from the packed form (the same floats, so the same weights).
    static func prepare(_ source: WeightSource, from held: HeldWeights, tile: WinogradTile,
                        context: KernelContext) throws -> Self {
        let form: PreparedForm = tile == .large ? .winograd : .winograd2x2
        let filter = try source.convolutionFilter(for: form)
        if held.original != nil {
            let values = try held.requireOriginal(for: form)
            switch filter.layout {
            case .hwio: return try WinogradWeights(hwio: values, inputChannels: filter.inputChannels,
                                                   outputChannels: filter.outputChannels, tile: tile, context: context)
            case .oihw: return try WinogradWeights(oihw: values, inputChannels: filter.inputChannels,
                                                   outputChannels: filter.outputChannels, tile: tile, context: context)
            }
        }
        return try WinogradWeights(try held.rowMajorPacking(for: form), tile: tile, context: context)
    }

    /// [inputChannels, outputChannels] for interleaved panels, [inputChannels, outputChannels, 16]
    /// for panels split into 16-column halves (format version 6).
    var storedDims: [Int] { [inputChannels, outputChannels] + panelHalvesDims(splitHalves) }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R { try withUnsafeValues(body) }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        try self.init(borrowing: values, owner: owner, storedDims: dims, tile: .large)
    }

    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int], tile: WinogradTile) throws {
        let splitHalves = try panelDims(dims, "winograd weights")
        try self.init(borrowing: values, owner: owner, inputChannels: dims[0], outputChannels: dims[1], tile: tile,
                      splitHalves: splitHalves)
    }
}

/// F(2×2, 3×3) weights: the same type as the F(4×4) ones, a form of their own so that a model
/// whose plans pick both tiles for one filter (batch 1 and batch 8) keeps both.
struct SmallTileWinogradWeights: PreparedPayload {
    static var form: PreparedForm { .winograd2x2 }
    let weights: WinogradWeights

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        SmallTileWinogradWeights(weights: try WinogradWeights.prepare(source, from: held, tile: .small, context: context))
    }

    private init(weights: WinogradWeights) { self.weights = weights }

    var storedDims: [Int] { weights.storedDims }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try weights.withUnsafeStoredValues(body)
    }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        weights = try WinogradWeights(borrowing: values, owner: owner, storedDims: dims, tile: .small)
    }
}

extension LineWinogradWeights: PreparedPayload {
    static var form: PreparedForm { .lineWinograd }

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        try prepare(source, from: held, square: false, context: context)
    }

    /// From the original filter, or from the packed form (the same floats, so the same weights).
    static func prepare(_ source: WeightSource, from held: HeldWeights, square: Bool,
                        context: KernelContext) throws -> Self {
        let form: PreparedForm = square ? .squareWinograd : .lineWinograd
        let filter = try source.convolutionFilter(for: form)
        guard let (taps, span) = LineWinograd.span(of: filter.kernel), (span == .square) == square else {
            throw source.cannotPrepare(form)
        }
        if held.original != nil {
            let values = try held.requireOriginal(for: form)
            switch filter.layout {
            case .hwio: return try LineWinogradWeights(hwio: values, taps: taps, square: square,
                                                       inputChannels: filter.inputChannels,
                                                       outputChannels: filter.outputChannels, context: context)
            case .oihw: return try LineWinogradWeights(oihw: values, taps: taps, square: square,
                                                       inputChannels: filter.inputChannels,
                                                       outputChannels: filter.outputChannels, context: context)
            }
        }
        return try LineWinogradWeights(try held.rowMajorPacking(for: form), context: context)
    }

    /// [taps, inputChannels, outputChannels], with a fourth dimension of 16 for panels split into halves.
    var storedDims: [Int] { [taps, inputChannels, outputChannels] + panelHalvesDims(splitHalves) }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R { try withUnsafeValues(body) }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        try self.init(borrowing: values, owner: owner, storedDims: dims, square: false)
    }

    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int], square: Bool) throws {
        guard dims.count == 3 || (dims.count == 4 && dims[3] == splitPanelMark) else {
            throw KernelError.invalidArgument(kernel: "line winograd weights",
                                              message: "dims \(dims) are not [taps, inputs, outputs] or [taps, inputs, outputs, 16]")
        }
        try self.init(borrowing: values, owner: owner, taps: dims[0], square: square, inputChannels: dims[1],
                      outputChannels: dims[2], splitHalves: dims.count == 4)
    }
}

/// F(4×4, 5×5) weights: the same type as the line ones, a form of its own because a .keelc stores
/// both as [taps, inputs, outputs] and only the kind tells a 5×5 square from a 1×5 line.
struct SquareWinogradWeights: PreparedPayload {
    static var form: PreparedForm { .squareWinograd }
    let weights: LineWinogradWeights

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        SquareWinogradWeights(weights: try LineWinogradWeights.prepare(source, from: held, square: true, context: context))
    }

    private init(weights: LineWinogradWeights) { self.weights = weights }

    var storedDims: [Int] { weights.storedDims }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try weights.withUnsafeStoredValues(body)
    }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        weights = try LineWinogradWeights(borrowing: values, owner: owner, storedDims: dims, square: true)
    }
}

extension PackedConv2DWeights: PreparedPayload {
    static var form: PreparedForm { .packed }

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        let filter = try source.convolutionFilter(for: form)
        let values = try held.requireOriginal(for: form)
        switch filter.layout {
        case .hwio:
            return try PackedConv2DWeights(hwio: values, kernel: filter.kernel, inputChannelsPerGroup: filter.inputChannelsPerGroup,
                                           outputChannels: filter.outputChannels, groups: filter.groups, context: context)
        case .oihw:
            return try PackedConv2DWeights(oihw: values, kernel: filter.kernel, inputChannelsPerGroup: filter.inputChannelsPerGroup,
                                           outputChannels: filter.outputChannels, groups: filter.groups, context: context)
        }
    }

    /// [kernelHeight, kernelWidth, inputChannelsPerGroup, outputChannels, groups].
    var storedDims: [Int] { [kernel.height, kernel.width, inputChannelsPerGroup, outputChannels, groups] }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R { try withUnsafeValues(body) }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        try requireDims(dims, 5, "conv2d weights", "[kernel height, kernel width, inputs per group, outputs, groups]")
        try self.init(borrowing: values, owner: owner, kernel: Size2D(dims[0], dims[1]), inputChannelsPerGroup: dims[2],
                      outputChannels: dims[3], groups: dims[4])
    }
}

extension PanelConv2DWeights: PreparedPayload {
    static var form: PreparedForm { .panels }

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        let filter = try source.convolutionFilter(for: form)
        let packed = try held.existing(PackedConv2DWeights.self) ?? PackedConv2DWeights.prepare(source, from: held, context: context)
        return try PanelConv2DWeights(packed, layout: filter.activations, context: context)
    }

    /// As the `packed` form's.
    var storedDims: [Int] { rowMajor().storedDims }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try rowMajor().withUnsafeStoredValues(body)
    }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        throw KernelError.invalidArgument(kernel: Self.form.rawValue, message: "this form is not stored in compiled model files")
    }
}

extension PanelDenseWeights: PreparedPayload {
    static var form: PreparedForm { .densePanels }

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        guard case .denseMatrix(let matrix) = source else { throw source.cannotPrepare(form) }
        return try PanelDenseWeights(kernel: try held.requireOriginal(for: form), inFeatures: matrix.inFeatures,
                                     outFeatures: matrix.outFeatures, layout: matrix.layout, context: context)
    }

    /// [inFeatures, outFeatures] for interleaved panels; [inFeatures, outFeatures, 16] for panels
    /// split into 16-column halves (format version 6).
    var storedDims: [Int] { [inFeatures, outFeatures] + panelHalvesDims(splitHalves) }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withUnsafePackedValues(body)
    }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        let splitHalves = try panelDims(dims, "dense weights")
        try self.init(borrowing: values, owner: owner, inFeatures: dims[0], outFeatures: dims[1],
                      splitHalves: splitHalves)
    }
}

extension BF16Weights: PreparedPayload {
    static var form: PreparedForm { .bf16 }

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        switch source {
        case .convolutionFilter:
            // From the im2col packing, held already (in either form) or made for this alone.
            let packed = try held.existing(PackedConv2DWeights.self) ?? held.existing(PanelConv2DWeights.self)?.rowMajor()
                ?? PackedConv2DWeights.prepare(source, from: held, context: context)
            return try BF16Weights(packed)
        case .denseMatrix(let matrix):
            let values = try held.requireOriginal(for: form)
            return try BF16Weights(values, depth: matrix.inFeatures, columns: matrix.outFeatures,
                                   depthStride: matrix.layout == .inOut ? matrix.outFeatures : 1,
                                   columnStride: matrix.layout == .inOut ? 1 : matrix.inFeatures,
                                   splitInput: BF16Convolution.splitsInput(inputChannels: matrix.inFeatures))
        case .batchNorm:
            throw source.cannotPrepare(form)
        }
    }

    /// [depth, columns].
    var storedDims: [Int] { [depth, columns] }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R { try withUnsafeSlots(body) }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        try requireDims(dims, 2, "bf16 weights", "[depth, columns]")
        try self.init(borrowing: values, owner: owner, depth: dims[0], columns: dims[1])
    }
}

/// A batch norm as one multiply-add per element: scale = γ/√(σ²+ε), shift = β − μ·scale.
struct FoldedBatchNorm: PreparedPayload {
    static var form: PreparedForm { .foldedBatchNorm }
    let channels: Int
    /// The scales, then the shifts.
    let scaleShift: [Float]

    static func prepare(_ source: WeightSource, from held: HeldWeights, context: KernelContext) throws -> Self {
        guard case .batchNorm(let vectors) = source else { throw source.cannotPrepare(form) }
        let channels = vectors.channels
        var scaleShift = [Float](repeating: 0, count: 2 * channels)
        try scaleShift.withUnsafeMutableBufferPointer { buffer in
            try BatchNorm.foldScaleShift(gamma: vectors.gamma, beta: vectors.beta, mean: vectors.mean, variance: vectors.variance,
                                         epsilon: vectors.epsilon, channels: channels,
                                         scale: UnsafeMutableBufferPointer(rebasing: buffer[0..<channels]),
                                         shift: UnsafeMutableBufferPointer(rebasing: buffer[channels...]))
        }
        return FoldedBatchNorm(channels: channels, scaleShift: scaleShift)
    }

    private init(channels: Int, scaleShift: [Float]) {
        self.channels = channels
        self.scaleShift = scaleShift
    }

    /// [channels].
    var storedDims: [Int] { [channels] }
    func withUnsafeStoredValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scaleShift.withUnsafeBufferPointer(body)
    }
    init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, storedDims dims: [Int]) throws {
        try requireDims(dims, 1, "batch_norm", "[channels]")
        guard values.count == 2 * dims[0] else {
            throw KernelError.invalidArgument(kernel: "batch_norm", message: "\(values.count) values for \(dims[0]) channels")
        }
        self.init(channels: dims[0], scaleShift: Array(values))
    }
}
