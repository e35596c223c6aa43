import KeelIR

// Translations of ONNX data-movement ops and reductions. Several of these took their
// parameters as attributes in older opsets and as (constant) inputs in newer ones.

func translateDropout(_ context: NodeContext) throws {
    try context.requireUnusedOutputs(from: 1)
    let rate = context.opset < 12 ? try context.float("ratio", default: 0.5) : try context.constantFloat(1) ?? 0.5
    if context.opset >= 12, let training = try context.constantFloat(2), training != 0 {
        throw context.fail("training mode is not supported")
    }
    try translateUnary(context, .dropout, ["rate": .float(rate)])
}

func translateCast(_ context: NodeContext) throws {
    let code = try context.int("to", default: 0)
    guard let dtype = dtypeForONNX(code) else {
        throw ONNXError.unsupportedDType(path: context.importer.path, name: context.name, dataType: code)
    }
    try translateUnary(context, .cast, ["to": .string(dtype.rawValue)])
}

func translateFlatten(_ context: NodeContext) throws {
    let shape = context.shape(0)
    var axis = try context.int("axis", default: 1)
    if axis < 0 {
        guard let rank = shape?.count else { throw context.fail("negative axis \(axis) needs the input's rank, which is unknown") }
        axis += rank
    }
    var output: [Dim?]? = nil
    if let shape, axis >= 0, axis <= shape.count {
        output = [product(shape[..<axis]), product(shape[axis...])]
    }
    context.emit(.flatten, [try context.input(0)], ["axis": .int(axis)], shape: output)
}

/// The product of partial dims: a known extent or a multiple of the one symbol among them
/// (a single dimension passes through, so the batch survives); nil when unknown.
private func product(_ dims: ArraySlice<Dim?>) -> Dim? {
    productOfDims(dims)?.dim
}

private func productOfDims(_ dims: ArraySlice<Dim?>) -> DimProduct? {
    let present = dims.compactMap { $0 }
    return present.count == dims.count ? DimProduct(present) : nil
}

/// Reshape's target is an attribute before opset 5 and an input after; when the input is
/// computed from shapes, the folder resolves it here into a constant `shape` attribute.
func translateReshape(_ context: NodeContext) throws {
    let target: KnownInts
    if context.opset < 5 {
        guard let shape = try context.ints("shape") else { throw context.fail("needs a 'shape' attribute") }
        target = .tensor(dtype: .int64, shape: [shape.count], elements: shape.map { .constant(Int64($0)) })
    } else if context.hasInput(1), let value = context.importer.values[context.node.inputs[1]]?.known {
        target = value
    } else {
        throw context.fail("the target shape must be a constant or computed from shapes at import time")
    }
    let data = try context.input(0)
    let source = context.node.inputs[0]
    let allowZero = try context.int("allowzero", default: 0) != 0
    let resolved = try context.importer.reshapeTarget(target, input: source, allowZero: allowZero, context: context)
    guard resolved.filter({ $0 == -1 }).count <= 1 else { throw context.fail("the target \(resolved) has more than one -1") }
    let input = context.shape(0)
    let zeroCopies = !allowZero || !resolved.contains(0)
    var output: [Dim?] = resolved.enumerated().map { position, extent in
        extent == 0 && zeroCopies ? (input.flatMap { position < $0.count ? $0[position] : nil }) : extent >= 0 ? .known(extent) : nil
    }
    if let inferred = resolved.firstIndex(of: -1), let total = input.flatMap({ productOfDims($0[...]) }),
       let rest = productOfDims(output.enumerated().filter { $0.offset != inferred }.map(\.element)[...]) {
        output[inferred] = total.dividing(by: rest)
    }
    var attributes: [String: AttributeValue] = ["shape": .ints(resolved)]
    if !zeroCopies { attributes["allowzero"] = .int(1) }
    context.emit(.reshape, [data], attributes, shape: output)
}

func translateTranspose(_ context: NodeContext) throws {
    let input = context.shape(0)
    var attributes: [String: AttributeValue] = [:]
    var output: [Dim?]? = input.map { Array($0.reversed()) }
    if let perm = try context.ints("perm") {
        attributes["perm"] = .ints(perm)
        output = nil
        if let input, perm.count == input.count, perm.allSatisfy({ input.indices.contains($0) }) {
            output = perm.map { input[$0] }
        }
    }
    context.emit(.transpose, [try context.input(0)], attributes, shape: output)
}

func translateConcat(_ context: NodeContext) throws {
    guard let axis = try context.optionalInt("axis") else { throw context.fail("needs an 'axis' attribute") }
    let indices = context.node.inputs.indices.filter(context.hasInput)
    let inputs = try indices.map(context.input)
    var output: [Dim?]? = nil
    let shapes = indices.compactMap(context.shape)
    if shapes.count == indices.count, let first = shapes.first, shapes.allSatisfy({ $0.count == first.count }) {
        let resolved = axis < 0 ? axis + first.count : axis
        if first.indices.contains(resolved) {
            output = first
            output?[resolved] = shapes.reduce(Dim?.some(.known(0))) { total, shape in
                guard let sum = total?.value, let extent = shape[resolved]?.value else { return nil }
                let (next, overflow) = sum.addingReportingOverflow(extent)
                return overflow ? nil : .known(next)
            }
        }
    }
    context.emit(.concat, inputs, ["axis": .int(axis)], shape: output)
}

func translateSlice(_ context: NodeContext) throws {
    let old = context.opset < 10
    guard let starts = old ? try context.ints("starts") : try context.constantInts(1),
          let ends = old ? try context.ints("ends") : try context.constantInts(2) else {
        throw context.fail("needs starts and ends")
    }
    let axes = old ? try context.ints("axes") : try context.constantInts(3)
    let steps = old ? nil : try context.constantInts(4)
    guard starts.count == ends.count, axes.map({ $0.count == starts.count }) ?? true,
          steps.map({ $0.count == starts.count && $0.allSatisfy(isValidStep) }) ?? true else {
        throw context.fail("starts, ends, axes and steps must have the same length (and steps no zero)")
    }
    var attributes: [String: AttributeValue] = ["starts": .ints(starts), "ends": .ints(ends)]
    if let axes { attributes["axes"] = .ints(axes) }
    if let steps { attributes["steps"] = .ints(steps) }
    var output = context.shape(0)
    if let rank = output?.count {
        for (index, axis) in (axes ?? Array(0..<starts.count)).enumerated() {
            let resolved = axis < 0 ? axis + rank : axis
            guard (0..<rank).contains(resolved) else { continue }
            var sliced: Dim? = nil
            if let dims = output, let extent = dims[resolved]?.value {
                sliced = .known(sliceLength(count: extent, start: starts[index], end: ends[index], step: steps?[index] ?? 1))
            }
            output?[resolved] = sliced
        }
    }
    context.emit(.slice, [try context.input(0)], attributes, shape: output)
}

/// A Slice step Keel accepts: non-zero and of a sane magnitude (so arithmetic cannot overflow).
func isValidStep(_ step: Int) -> Bool { step != 0 && step >= -Int(Int32.max) && step <= Int(Int32.max) }

func translateGather(_ context: NodeContext) throws {
    let axis = try context.int("axis", default: 0)
    var output: [Dim?]? = nil
    if let data = context.shape(0), let indices = context.shape(1) {
        let resolved = axis < 0 ? axis + data.count : axis
        if data.indices.contains(resolved) { output = Array(data[..<resolved]) + indices + Array(data[(resolved + 1)...]) }
    }
    context.emit(.gather, [try context.input(0), try context.input(1)], ["axis": .int(axis)], shape: output)
}

/// Squeeze/Unsqueeze: `axes` is an attribute before opset 13 and an input after. A Squeeze
/// without axes removes the size-1 dimensions, which must then be known.
func translateSqueeze(_ context: NodeContext, op: OpKind) throws {
    let input = context.shape(0)
    var axes = context.opset < 13 ? try context.ints("axes") : try context.constantInts(1)
    if axes == nil, op == .squeeze {
        guard let input, input.allSatisfy({ $0 != nil }) else {
            throw context.fail("squeezing without axes needs the input's shape, which is not known at import time")
        }
        axes = input.indices.filter { input[$0] == .known(1) }
    }
    guard let axes else { throw context.fail("needs axes") }
    var output: [Dim?]? = nil
    if let input {
        let rank = op == .squeeze ? input.count : input.count + axes.count
        let resolved = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        if op == .squeeze {
            output = input.indices.filter { !resolved.contains($0) }.map { input[$0] }
        } else {
            var remaining = input.makeIterator()
            output = (0..<rank).map { resolved.contains($0) ? .known(1) : (remaining.next() ?? nil) }
        }
    }
    context.emit(op, [try context.input(0)], ["axes": .ints(axes)], shape: output)
}

/// Pad: attributes before opset 11, inputs after (`axes` since 18). Only constant mode.
func translatePad(_ context: NodeContext) throws {
    let mode = try context.string("mode", default: "constant")
    guard mode == "constant" else { throw context.fail("mode '\(mode)' is not supported (only constant)") }
    let old = context.opset < 11
    guard var pads = old ? (try context.ints("pads") ?? context.ints("paddings")) : try context.constantInts(1) else {
        throw context.fail("needs pads")
    }
    let value = old ? try context.float("value", default: 0) : try context.constantFloat(2) ?? 0
    let input = context.shape(0)
    if !old, let axes = try context.constantInts(3) {
        guard let rank = input?.count, pads.count == 2 * axes.count else {
            throw context.fail("padding selected axes needs the input's rank and two pads per axis")
        }
        var full = Array(repeating: 0, count: 2 * rank)
        for (index, axis) in axes.enumerated() {
            let resolved = axis < 0 ? axis + rank : axis
            guard (0..<rank).contains(resolved) else { throw context.fail("axis \(axis) is out of range") }
            full[resolved] = pads[index]
            full[rank + resolved] = pads[axes.count + index]
        }
        pads = full
    }
    var output = input
    if let rank = input?.count, pads.count == 2 * rank {
        output = (0..<rank).map { axis in
            guard let extent = input?[axis]?.value else { return nil }
            let (padded, overflow) = extent.addingReportingOverflow(pads[axis])
            let (total, overflowAgain) = padded.addingReportingOverflow(pads[rank + axis])
            return overflow || overflowAgain ? nil : .known(total)
        }
    }
    context.emit(.pad, [try context.input(0)], ["pads": .ints(pads), "value": .float(value)], shape: output)
}

/// ReduceMean/ReduceSum: `axes` became an input at `axesInputSince`; empty axes mean "all"
/// unless `noop_with_empty_axes` says "none".
func translateReduce(_ context: NodeContext, op: OpKind, axesInputSince: Int) throws {
    guard let (attributes, output) = try reduction(context, axesInputSince: axesInputSince) else {
        try translateUnary(context, .identity)
        return
    }
    context.emit(op, [try context.input(0)], attributes, shape: output)
}

/// CumSum: the axis is an input, and must be a constant (one integer).
func translateCumulativeSum(_ context: NodeContext) throws {
    guard let axes = try context.constantInts(1), axes.count == 1 else {
        throw context.fail("needs its axis (input 1) as one constant integer")
    }
    let attributes: [String: AttributeValue] = [
        "axis": .int(axes[0]), "exclusive": .bool(try context.int("exclusive", default: 0) != 0),
        "reverse": .bool(try context.int("reverse", default: 0) != 0),
    ]
    context.emit(.cumulativeSum, [try context.input(0)], attributes, shape: context.shape(0))
}

/// ReduceL1 and ReduceL2 as the sum of |x| and the square root of the sum of x² (PyTorch's
/// F.normalize, as in Swin V2's cosine attention, exports ReduceL2).
func translateNormReduce(_ context: NodeContext, squares: Bool) throws {
    let input = try context.input(0)
    guard let (attributes, output) = try reduction(context, axesInputSince: 18) else {
        // As ONNX's reference: the input itself.
        try translateUnary(context, .identity)
        return
    }
    if squares {
        context.emit(.sqrt, [context.emitStep("sum_of_squares", .reduceSumSquare, [input], attributes)], shape: output)
    } else {
        context.emit(.reduceSum, [context.emitStep("magnitude", .abs, [input])], attributes, shape: output)
    }
}

/// A reduction's IR attributes and output shape, or nil when it reduces nothing (empty axes
/// with noop_with_empty_axes). Axes are an attribute before `axesInputSince`, an input after.
private func reduction(_ context: NodeContext, axesInputSince: Int) throws -> ([String: AttributeValue], [Dim?]?)? {
    let axes = context.opset < axesInputSince ? try context.ints("axes") : try context.constantInts(1)
    let keepdims = try context.int("keepdims", default: 1) != 0
    if axes?.isEmpty ?? true, try context.int("noop_with_empty_axes", default: 0) != 0 { return nil }
    var attributes: [String: AttributeValue] = ["keepdims": .bool(keepdims)]
    var output: [Dim?]? = nil
    if let axes, !axes.isEmpty { attributes["axes"] = .ints(axes) }
    if let input = context.shape(0) {
        let listed = (axes ?? []).map { $0 < 0 ? $0 + input.count : $0 }
        let reduced = Set(listed.isEmpty ? Array(input.indices) : listed)
        output = keepdims ? input.indices.map { reduced.contains($0) ? .known(1) : input[$0] }
            : input.indices.filter { !reduced.contains($0) }.map { input[$0] }
    }
    return (attributes, output)
}
