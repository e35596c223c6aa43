import KeelIR

// Translations of ONNX ops that cut, repeat or regroup elements (Split, Expand, Tile,
// DepthToSpace, SpaceToDepth), plus Mean, which Keel spells as a sum times 1/n.

/// Split: piece sizes are an attribute before opset 13 and an optional input after; opset 18
/// adds `num_outputs`, whose last piece may be smaller. Without either, equal pieces.
func translateSplit(_ context: NodeContext) throws {
    let input = context.shape(0)
    let axis = try context.int("axis", default: 0)
    let pieces = context.node.outputs.count
    guard pieces >= 1 else { throw context.fail("has no outputs") }
    let resolvedAxis = input.map { axis < 0 ? axis + $0.count : axis }
    let extent = resolvedAxis.flatMap { resolved in input.flatMap { $0.indices.contains(resolved) ? $0[resolved]?.value : nil } }
    var sizes = context.opset < 13 ? try context.ints("split") : try context.constantInts(1)
    if let sizes, sizes.count != pieces || sizes.contains(where: { $0 < 0 || $0 > Int(Int32.max) }) {
        throw context.fail("split sizes \(sizes) must be \(pieces) non-negative extents, one per output")
    }
    if sizes == nil, context.opset >= 18, let count = try context.optionalInt("num_outputs") {
        guard count == pieces else { throw context.fail("num_outputs \(count) disagrees with its \(pieces) outputs") }
        guard let extent else { throw context.fail("num_outputs needs the split axis's extent, which is not known at import time") }
        // Pieces of ceil(extent / count); the last takes what is left.
        let chunk = extent / count + (extent % count == 0 ? 0 : 1)
        var remaining = extent
        sizes = (0..<count).map { _ in
            let size = min(chunk, remaining)
            remaining -= size
            return size
        }
    }
    var attributes: [String: AttributeValue] = ["axis": .int(axis)]
    if let sizes { attributes["sizes"] = .ints(sizes) }
    let shapes: [[Dim?]?] = (0..<pieces).map { piece in
        guard var shape = input, let resolvedAxis, shape.indices.contains(resolvedAxis) else { return nil }
        if let sizes, piece < sizes.count {
            shape[resolvedAxis] = .known(sizes[piece])
        } else {
            shape[resolvedAxis] = extent.map { .known($0 / pieces) }
        }
        return shape
    }
    context.emit(.split, [try context.input(0)], attributes, shapes: shapes)
}

/// Expand's target may hold run-time sizes (the class token expanded to [N,1,768]): each
/// becomes its multiple in `shape` and its symbol in `symbols`, resolved per plan.
func translateExpand(_ context: NodeContext) throws {
    guard context.hasInput(1), let target = context.importer.values[context.node.inputs[1]]?.known?.elements else {
        throw context.fail("needs a shape input known at import time or computed from shapes")
    }
    try emitExpand(context, try context.input(0), shape: context.shape(0), to: target)
}

/// An expand node broadcasting `input` (of `shape`, when known) to `target`, whose extents may
/// be run-time sizes.
func emitExpand(_ context: NodeContext, _ input: String, shape inputShape: [Dim?]?, to target: [SymbolicInt]) throws {
    var shape: [Int] = []
    var symbols: [String] = []
    for element in target {
        switch element.dim {
        case .known(let extent)? where extent >= 0 && extent <= Int(Int32.max):
            shape.append(extent)
            symbols.append("")
        case let dim? where dim.isSymbolic:
            shape.append(dim.coefficient)
            symbols.append(dim.symbolName ?? "")
        default:
            throw context.fail("target \(target.map { $0.dim?.description ?? "?" }) has an extent that is negative or unknown at import time")
        }
    }
    var attributes: [String: AttributeValue] = ["shape": .ints(shape)]
    if symbols.contains(where: { !$0.isEmpty }) { attributes["symbols"] = .strings(symbols) }
    let dims = zip(shape, symbols).map { extent, symbol -> Dim? in symbol.isEmpty ? .known(extent) : .scaled(symbol, by: extent) }
    context.emit(.expand, [input], attributes, shape: broadcastShapes(inputShape, dims))
}

func translateTile(_ context: NodeContext) throws {
    if context.hasInput(1), let repeats = context.importer.values[context.node.inputs[1]]?.known?.elements,
       repeats.contains(where: { $0.constant == nil }) {
        try translateTileByRunTimeSize(context, repeats: repeats)
        return
    }
    guard let repeats = try context.constantInts(1) else { throw context.fail("needs a repeats input") }
    guard repeats.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else {
        throw context.fail("repeats \(repeats) must be non-negative counts")
    }
    let output = context.shape(0).map { input in
        zip(input, repeats).map { dim, count -> Dim? in
            count == 1 ? dim : dim?.value.flatMap { checkedProduct($0, count) }
        }
    }
    context.emit(.tile, [try context.input(0)], ["repeats": .ints(repeats)], shape: output)
}

/// Tile repeated a run-time number of times (XCiT's positional encoding, `repeat(B, 1, 1, 1)`):
/// along axes of extent 1 that is a broadcast, so it becomes an expand; repeating a longer axis
/// a run-time number of times has no fixed layout and is refused.
private func translateTileByRunTimeSize(_ context: NodeContext, repeats: [SymbolicInt]) throws {
    guard let input = context.shape(0), input.count == repeats.count else {
        throw context.fail("repeats a run-time number of times, and the input's rank is unknown or not the repeats' length")
    }
    var target: [SymbolicInt] = []
    for (dim, count) in zip(input, repeats) {
        if count.constant == 1 {
            target.append(.constant(1))
        } else if dim?.value == 1 {
            target.append(count)
        } else {
            throw context.fail("repeats an axis of extent \(dim?.description ?? "?") a run-time number of times; only axes of extent 1 can be")
        }
    }
    try emitExpand(context, try context.input(0), shape: context.shape(0), to: target)
}

/// DepthToSpace (with `mode`) and SpaceToDepth over NCHW images.
func translateBlockMove(_ context: NodeContext, op: OpKind) throws {
    guard let block = try context.optionalInt("blocksize"), block >= 1, block <= 1 << 12 else {
        throw context.fail("needs a positive 'blocksize'")
    }
    var attributes: [String: AttributeValue] = ["layout": .string("nchw"), "block_size": .int(block)]
    if op == .depthToSpace {
        let mode = try context.string("mode", default: "DCR")
        guard mode == "DCR" || mode == "CRD" else { throw context.fail("mode '\(mode)' is not DCR or CRD") }
        attributes["mode"] = .string(mode)
    }
    var output = context.shape(0)
    if let input = output, input.count == 4 {
        let toSpace = op == .depthToSpace
        let channels = input[1]?.value.flatMap { toSpace ? .known($0 / (block * block)) : checkedProduct($0, block * block) }
        let spatial = { (dim: Dim?) -> Dim? in dim?.value.flatMap { toSpace ? checkedProduct($0, block) : .known($0 / block) } }
        output = [input[0], channels, spatial(input[2]), spatial(input[3])]
    }
    context.emit(op, [try context.input(0)], attributes, shape: output)
}

/// Mean of n inputs with broadcasting: their sum times 1/n.
func translateMean(_ context: NodeContext) throws {
    let inputs = try context.node.inputs.indices.filter(context.hasInput).map(context.input)
    guard !inputs.isEmpty else { throw context.fail("has no inputs") }
    let shapes = context.node.inputs.indices.map(context.shape)
    let shape = shapes.dropFirst().reduce(shapes.first ?? nil) { broadcastShapes($0, $1) }
    if inputs.count == 1 {
        context.emit(.identity, inputs, shape: shape)
        return
    }
    let sum = context.emitStep("sum", .sum, inputs)
    let scale = context.addLiteral("reciprocal_count", TensorData(floats: [1 / Float(inputs.count)], shape: []))
    context.emit(.mul, [sum, scale], shape: shape)
}

/// a·b as a known extent, or nil (unknown) when it overflows.
private func checkedProduct(_ a: Int, _ b: Int) -> Dim? {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : .known(product)
}
