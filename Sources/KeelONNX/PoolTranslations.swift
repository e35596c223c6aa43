import KeelIR

// ONNX MaxPool and AveragePool over 1, 2 or 3 spatial axes, carried out by Keel's 2-D pools:
// 1-D as a 2-D pool of height 1, 3-D as a pool over height and width followed by a pool over
// depth. Both are exact because a box window factors per axis: its maximum, its sum, and its
// cell count (valid cells, or cells inside the padded input) are products of per-axis parts.

/// One pooling window's settings per spatial axis, in ONNX's axis order.
private struct PoolSettings {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    /// Every axis's begin pad, then every end pad.
    var pads: [Int]
    var ceilMode: Int
    var countIncludePad: Int?

    /// The IR attributes of a 2-D pool over the listed axes (`nil` stands for a unit axis).
    func attributes(height: Int?, width: Int?) -> [String: AttributeValue] {
        let axes = [height, width]
        let rank = kernel.count
        func pick(_ values: [Int], _ unit: Int) -> [Int] { axes.map { $0.map { values[$0] } ?? unit } }
        let pads2D = axes.map { $0.map { pads[$0] } ?? 0 } + axes.map { $0.map { pads[rank + $0] } ?? 0 }
        var result: [String: AttributeValue] = [
            "layout": .string("nchw"), "pool_size": .ints(pick(kernel, 1)), "strides": .ints(pick(strides, 1)),
            "dilations": .ints(pick(dilations, 1)), "ceil_mode": .int(ceilMode),
            "padding": .string(pads2D.allSatisfy { $0 == 0 } ? "valid" : "explicit"),
        ]
        if pads2D.contains(where: { $0 != 0 }) { result["pads"] = .ints(pads2D) }
        if let countIncludePad { result["count_include_pad"] = .int(countIncludePad) }
        return result
    }
}

func translatePool(_ context: NodeContext, op: OpKind) throws {
    guard let kernel = try context.ints("kernel_shape"), (1...3).contains(kernel.count), kernel.allSatisfy({ $0 >= 1 }) else {
        throw context.fail("only 1-D, 2-D and 3-D pooling is supported (kernel_shape must list 1 to 3 positive extents)")
    }
    try context.requireUnusedOutputs(from: 1)
    let rank = kernel.count
    let input = context.shape(0)
    if let input, input.count != rank + 2 {
        throw context.fail("kernel_shape has \(rank) entries but the input has rank \(input.count)")
    }
    let strides = try spatialList(context, "strides", count: rank)
    let dilations = try spatialList(context, "dilations", count: rank)
    let ceilMode = try context.int("ceil_mode", default: 0)
    let countIncludePad = op == .avgPool2d ? try context.int("count_include_pad", default: 0) : nil
    let x = try context.input(0)
    if rank == 2 {
        // Padding as conv2d spells it: SAME_UPPER stays symbolic-size friendly as "same".
        var attributes = PoolSettings(kernel: kernel, strides: strides, dilations: dilations, pads: [0, 0, 0, 0],
                                      ceilMode: ceilMode, countIncludePad: countIncludePad).attributes(height: 0, width: 1)
        try addSpatialPadding(context, to: &attributes)
        context.emit(op, [x], attributes, shape: nchwShape(context, channels: input?[1] ?? nil))
        return
    }
    let extents = (0..<rank).map { input?[2 + $0]?.value }
    let settings = PoolSettings(kernel: kernel, strides: strides, dilations: dilations,
                                pads: try explicitPads(context, extents: extents, kernel: kernel, strides: strides, dilations: dilations),
                                ceilMode: ceilMode, countIncludePad: countIncludePad)
    if rank == 1 {
        let rows = context.emitStep("as_2d", .unsqueeze, [x], ["axes": .ints([2])])
        let pooled = context.emitStep("pool", op, [rows], settings.attributes(height: nil, width: 0))
        var output = input
        output?[2] = extents[0] == nil ? nil : .known(try outputExtent(context, settings, axis: 0, extents: extents))
        context.emit(.squeeze, [pooled], ["axes": .ints([2])], shape: output)
        return
    }
    guard let channels = input?[1]?.value, let depth = extents[0], let height = extents[1], let width = extents[2],
          case let (planeCount, overflow) = channels.multipliedReportingOverflow(by: depth), !overflow else {
        throw context.fail("3-D pooling needs the input's channels and spatial extents, which are not known at import time")
    }
    let (outputDepth, outputHeight, outputWidth) = (try outputExtent(context, settings, axis: 0, extents: extents),
                                                   try outputExtent(context, settings, axis: 1, extents: extents),
                                                   try outputExtent(context, settings, axis: 2, extents: extents))
    // [N,C,D,H,W] -> [N,C·D,H,W], pool H and W; -> [N,C,D,H'·W'], pool D; -> [N,C,D',H',W'].
    let planes = context.emitStep("planes", .reshape, [x], ["shape": .ints([0, planeCount, height, width])])
    let pooledPlanes = context.emitStep("pool_hw", op, [planes], settings.attributes(height: 1, width: 2))
    let columns = context.emitStep("depth_columns", .reshape, [pooledPlanes],
                                   ["shape": .ints([0, channels, depth, outputHeight * outputWidth])])
    let pooled = context.emitStep("pool_depth", op, [columns], settings.attributes(height: 0, width: nil))
    context.emit(.reshape, [pooled], ["shape": .ints([0, channels, outputDepth, outputHeight, outputWidth])],
                 shape: [input?[0] ?? nil, .known(channels), .known(outputDepth), .known(outputHeight), .known(outputWidth)])
}

/// GlobalAveragePool/GlobalMaxPool over every axis after the channels. Keel's global pools take
/// NCHW images, so another rank (GlobalAveragePooling1D's [N,C,L], a volume) is viewed as
/// [N,C,L,1] around the pool: the reshapes are views, not copies.
func translateGlobalPool(_ context: NodeContext, op: OpKind) throws {
    let input = context.shape(0)
    guard let rank = input?.count else { throw context.fail("needs the input's rank, which is unknown") }
    guard rank >= 3 else { throw context.fail("needs an input of rank 3 or more ([N,C,...]), not rank \(rank)") }
    let pooledShape = input.map { Array($0.prefix(2)) + Array(repeating: Dim.known(1), count: rank - 2) }
    let attributes: [String: AttributeValue] = ["layout": .string("nchw"), "keepdims": .bool(true)]
    if rank == 4 {
        context.emit(op, [try context.input(0)], attributes, shape: pooledShape)
        return
    }
    if op == .globalAvgPool2d {
        // A mean over the trailing axes (GlobalAveragePooling1D and LayerNormalization's moments via tf2onnx).
        context.emit(.reduceMean, [try context.input(0)], ["axes": .ints(Array(2..<rank)), "keepdims": .bool(true)], shape: pooledShape)
        return
    }
    let columns = context.emitStep("as_image", .reshape, [try context.input(0)], ["shape": .ints([0, 0, -1, 1])])
    let pooled = context.emitStep("pool", op, [columns], attributes)
    context.emit(.reshape, [pooled], ["shape": .ints([0, 0] + Array(repeating: 1, count: rank - 2))], shape: pooledShape)
}

/// A per-axis attribute (strides, dilations) with `count` positive entries, defaulting to ones.
private func spatialList(_ context: NodeContext, _ key: String, count: Int) throws -> [Int] {
    let values = try context.ints(key) ?? Array(repeating: 1, count: count)
    guard values.count == count, values.allSatisfy({ $0 >= 1 }) else {
        throw context.fail("'\(key)' must be \(count) positive numbers, got \(values)")
    }
    return values
}

/// The pooled extent of spatial axis `axis`, with the same arithmetic the IR's shape inference uses.
private func outputExtent(_ context: NodeContext, _ settings: PoolSettings, axis: Int, extents: [Int?]) throws -> Int {
    guard let extent = extents[axis] else {
        throw context.fail("pooling needs spatial extent \(axis), which is not known at import time")
    }
    let rank = settings.kernel.count
    do {
        return try AxisGeometry.resolve(input: extent, kernel: settings.kernel[axis], stride: settings.strides[axis],
                                        dilation: settings.dilations[axis], padding: .explicit,
                                        explicitPads: (settings.pads[axis], settings.pads[rank + axis]),
                                        ceilMode: settings.ceilMode != 0).output
    } catch let problem as GeometryError {
        throw context.fail("the window does not fit spatial axis \(axis): \(problem.message)")
    }
}
