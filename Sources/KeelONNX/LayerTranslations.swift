import KeelIR

// Translations of ONNX layers (convolution, pooling, GEMM, normalisation, softmax) into IR
// layers. ONNX tensors are NCHW with OIHW kernels, so spatial ops say so in their attributes.

func translateConv(_ context: NodeContext) throws {
    let kernelShape = try weightConstant(context, 1, what: "kernel").shape
    if kernelShape.count == 3 { return try translateConv1D(context, kernelShape: kernelShape) }
    guard kernelShape.count == 4 else {
        throw context.fail("only 1-D and 2-D convolutions are supported (the kernel has rank \(kernelShape.count))")
    }
    if context.hasInput(2) { _ = try weightConstant(context, 2, what: "bias") }
    if let declared = try context.ints("kernel_shape"), declared != Array(kernelShape[2...]) {
        throw context.fail("kernel_shape \(declared) disagrees with the kernel's shape \(kernelShape)")
    }
    var attributes: [String: AttributeValue] = [
        "layout": .string("nchw"), "kernel_layout": .string("oihw"),
        "strides": .ints(try pair(context, "strides")), "dilations": .ints(try pair(context, "dilations")),
        "groups": .int(try context.int("group", default: 1)),
    ]
    try addSpatialPadding(context, to: &attributes)
    let inputs = [try context.input(0), try context.input(1)] + (try context.optionalInput(2).map { [$0] } ?? [])
    context.emit(.conv2d, inputs, attributes, shape: nchwShape(context, channels: .known(kernelShape[0])))
}

/// A 1-D convolution over [N, C, L] (ECA's channel attention: a k-tap Conv1d over the pooled
/// channels) as a 2-D one over a [N, C, 1, L] image with a [O, I, 1, k] filter, squeezed back.
private func translateConv1D(_ context: NodeContext, kernelShape: [Int]) throws {
    func single(_ key: String) throws -> Int {
        let values = try context.ints(key) ?? [1]
        guard values.count == 1, values[0] >= 1 else { throw context.fail("'\(key)' must be one positive number, got \(values)") }
        return values[0]
    }
    if let declared = try context.ints("kernel_shape"), declared != [kernelShape[2]] {
        throw context.fail("kernel_shape \(declared) disagrees with the kernel's shape \(kernelShape)")
    }
    var attributes: [String: AttributeValue] = [
        "layout": .string("nchw"), "kernel_layout": .string("oihw"),
        "strides": .ints([1, try single("strides")]), "dilations": .ints([1, try single("dilations")]),
        "groups": .int(try context.int("group", default: 1)),
    ]
    switch try context.string("auto_pad", default: "NOTSET") {
    case "NOTSET", "":
        let pads = try context.ints("pads") ?? [0, 0]
        guard pads.count == 2, pads.allSatisfy({ $0 >= 0 }) else {
            throw context.fail("'pads' must be two non-negative numbers, got \(pads)")
        }
        attributes["padding"] = .string("explicit")
        attributes["pads"] = .ints([0, pads[0], 0, pads[1]])
    case "VALID": attributes["padding"] = .string("valid")
    case "SAME_UPPER": attributes["padding"] = .string("same")
    case let mode: throw context.fail("auto_pad '\(mode)' is not supported for a 1-D convolution")
    }
    // The filter under a name of its own, its role and trainable flag kept (parameter counts).
    let kernelName = try context.input(1)
    let kernel = try weightConstant(context, 1, what: "kernel")
    let imageKernel = context.importer.uniqueName("\(kernelName)/as_image")
    let source = context.importer.graph.constants[kernelName]
    let shape = [kernelShape[0], kernelShape[1], 1, kernelShape[2]]
    context.importer.graph.constants[imageKernel] = Constant(
        name: imageKernel, type: TensorType(kernel.dtype, Shape(known: shape)), role: source?.role ?? .kernel,
        trainable: source?.trainable ?? false, data: TensorData(dtype: kernel.dtype, shape: shape, storage: kernel.storage),
        location: source?.location ?? context.location)
    if context.hasInput(2) { _ = try weightConstant(context, 2, what: "bias") }
    let image = context.emitStep("as_image", .unsqueeze, [try context.input(0)], ["axes": .ints([2])])
    let inputs = [image, imageKernel] + (try context.optionalInput(2).map { [$0] } ?? [])
    let convolved = context.emitStep("conv", .conv2d, inputs, attributes)
    let input = context.shape(0)
    let shape1D: [Dim?]? = input?.count == 3 ? [input?[0], .known(kernelShape[0]), nil] : nil
    context.emit(.squeeze, [convolved], ["axes": .ints([2])], shape: shape1D)
}

/// A weight input's constant: one the file holds, or one computed from constants only (NF-Nets
/// standardise their filters in the graph), evaluated now since layers read weights as constants.
func weightConstant(_ context: NodeContext, _ index: Int, what: String) throws -> TensorData {
    if let data = context.constantData(index) { return data }
    guard context.hasInput(index), let data = try context.importer.evaluateConstantComputation(context.node.inputs[index]) else {
        throw context.fail("the \(what) must be a constant, or computed from constants only")
    }
    return data
}

/// A two-element spatial attribute (strides, dilations) defaulting to ones.
func pair(_ context: NodeContext, _ key: String) throws -> [Int] {
    let values = try context.ints(key) ?? [1, 1]
    guard values.count == 2, values.allSatisfy({ $0 >= 1 }) else {
        throw context.fail("'\(key)' must be two positive numbers, got \(values)")
    }
    return values
}

/// ONNX `auto_pad`/`pads` as Keel's `padding`/`pads`. Both order 2-D pads top, left, bottom, right.
func addSpatialPadding(_ context: NodeContext, to attributes: inout [String: AttributeValue]) throws {
    switch try context.string("auto_pad", default: "NOTSET") {
    case "NOTSET", "":
        let pads = try context.ints("pads") ?? [0, 0, 0, 0]
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else {
            throw context.fail("'pads' must be four non-negative numbers, got \(pads)")
        }
        if pads.allSatisfy({ $0 == 0 }) {
            attributes["padding"] = .string("valid")
        } else {
            attributes["padding"] = .string("explicit")
            attributes["pads"] = .ints(pads)
        }
    case "VALID": attributes["padding"] = .string("valid")
    case "SAME_UPPER": attributes["padding"] = .string("same")
    case "SAME_LOWER":
        attributes["padding"] = .string("explicit")
        attributes["pads"] = .ints(try sameLowerPads(context))
    case let mode: throw context.fail("auto_pad '\(mode)' is not supported")
    }
}

/// SAME_LOWER pads like SAME_UPPER but puts the odd pixel first; Keel's `same` is the upper
/// form, so this becomes explicit pads, which needs the input's height and width.
private func sameLowerPads(_ context: NodeContext) throws -> [Int] {
    let shape = context.shape(0)
    let extents = shape?.count == 4 ? [shape?[2]?.value, shape?[3]?.value] : [nil, nil]
    let kernel = try context.ints("kernel_shape") ?? context.constantData(1).map { Array($0.shape.suffix(2)) } ?? []
    guard kernel.count == 2 else { throw context.fail("auto_pad SAME_LOWER needs the kernel size") }
    return try explicitPads(context, extents: extents, kernel: kernel, strides: try pair(context, "strides"),
                            dilations: try pair(context, "dilations"))
}

/// ONNX `auto_pad`/`pads` as explicit pads in ONNX order (every axis's begin, then every end)
/// for `kernel.count` spatial axes. The SAME modes need the spatial `extents`.
func explicitPads(_ context: NodeContext, extents: [Int?], kernel: [Int], strides: [Int], dilations: [Int]) throws -> [Int] {
    let rank = kernel.count
    let mode = try context.string("auto_pad", default: "NOTSET")
    // The same bound spatial geometry applies; it keeps the arithmetic below from overflowing.
    guard strides.count == rank, dilations.count == rank,
          (kernel + strides + dilations).allSatisfy({ $0 >= 1 && $0 <= 1 << 24 }) else {
        throw context.fail("kernel \(kernel), strides \(strides) and dilations \(dilations) must be \(rank) positive extents each")
    }
    switch mode {
    case "NOTSET", "":
        let pads = try context.ints("pads") ?? Array(repeating: 0, count: 2 * rank)
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }) else {
            throw context.fail("'pads' must be \(2 * rank) non-negative numbers, got \(pads)")
        }
        return pads
    case "VALID":
        return Array(repeating: 0, count: 2 * rank)
    case "SAME_UPPER", "SAME_LOWER":
        var begin: [Int] = [], end: [Int] = []
        for axis in 0..<rank {
            guard axis < extents.count, let extent = extents[axis], extent <= 1 << 24 else {
                throw context.fail("auto_pad \(mode) needs the input's spatial extents, which are not known at import time")
            }
            let output = (extent + strides[axis] - 1) / strides[axis]
            let total = max((output - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - extent, 0)
            let first = mode == "SAME_UPPER" ? total / 2 : total - total / 2
            begin.append(first)
            end.append(total - first)
        }
        return begin + end
    default:
        throw context.fail("auto_pad '\(mode)' is not supported")
    }
}

/// [N, channels, ?, ?] for a rank-4 input: enough for the folder to follow the batch.
func nchwShape(_ context: NodeContext, channels: Dim?) -> [Dim?]? {
    guard let input = context.shape(0), input.count == 4 else { return nil }
    return [input[0], channels, nil, nil]
}

/// Gemm is `alpha·A'·B' + beta·C`. With a constant 2-D B and unit scales it is a dense layer
/// (transB picks the weight layout); anything else is spelled out with matmul, mul and add.
func translateGemm(_ context: NodeContext) throws {
    let transA = try context.int("transA", default: 0) != 0
    let transB = try context.int("transB", default: 0) != 0
    let alpha = try context.float("alpha", default: 1)
    let beta = try context.float("beta", default: 1)
    let a = try context.input(0)
    let b = try context.input(1)
    let c = try context.optionalInput(2)
    if !transA, alpha == 1, c == nil || beta == 1, let kernel = context.constantData(1), kernel.shape.count == 2 {
        let units = transB ? kernel.shape[0] : kernel.shape[1]
        let layout: [String: AttributeValue] = ["weight_layout": .string(transB ? "out_in" : "in_out")]
        let shape: [Dim?] = [context.shape(0)?.first ?? nil, .known(units)]
        guard let c else { context.emit(.dense, [a, b], layout, shape: shape); return }
        if let bias = context.constantData(2), bias.elementCount == units, bias.shape.last == units {
            // A [1, units] bias is the same bytes as [units]; dense wants the 1-D form.
            let vector = bias.shape.count == 1 ? c
                : context.addLiteral("bias", TensorData(dtype: bias.dtype, shape: [units], storage: bias.storage))
            context.emit(.dense, [a, b, vector], layout, shape: shape)
        } else {
            let dense = context.emitStep("dense", .dense, [a, b], layout)
            context.emit(.add, [dense, c], shape: shape)
        }
        return
    }
    let left = transA ? context.emitStep("transpose_a", .transpose, [a], ["perm": .ints([1, 0])]) : a
    let right = transB ? context.emitStep("transpose_b", .transpose, [b], ["perm": .ints([1, 0])]) : b
    var steps: [(String, OpKind, [String])] = [("matmul", .matmul, [left, right])]
    if alpha != 1 { steps.append(("times_alpha", .mul, [context.addLiteral("alpha", TensorData(floats: [alpha], shape: []))])) }
    if let c {
        let scaled = beta == 1 ? c
            : context.emitStep("c_times_beta", .mul, [c, context.addLiteral("beta", TensorData(floats: [beta], shape: []))])
        steps.append(("add", .add, [scaled]))
    }
    var current = ""
    for (index, step) in steps.enumerated() {
        let inputs = index == 0 ? step.2 : [current] + step.2
        current = index == steps.count - 1 ? context.emit(step.1, inputs, shape: nil)
            : context.emitStep(step.0, step.1, inputs)
    }
}

/// MatMul by a constant matrix is a dense layer over the last axis (Keras's Dense exported by
/// tf2onnx); otherwise a batched matmul.
func translateMatMul(_ context: NodeContext) throws {
    let a = try context.input(0)
    let b = try context.input(1)
    if let kernel = context.constantData(1), kernel.shape.count == 2 {
        var shape = context.shape(0)
        if let rank = shape?.count, rank >= 1 { shape?[rank - 1] = .known(kernel.shape[1]) }
        context.emit(.dense, [a, b], ["weight_layout": .string("in_out")], shape: shape)
    } else {
        context.emit(.matmul, [a, b], shape: nil)
    }
}

func translateBatchNorm(_ context: NodeContext) throws {
    // Opsets 7 and 8 could normalise per activation instead of per channel.
    guard try context.int("spatial", default: 1) != 0 else { throw context.fail("spatial=0 is not supported") }
    try context.requireUnusedOutputs(from: 1)
    if try context.int("training_mode", default: 0) != 0 {
        try translateBatchStatisticsNorm(context)
        return
    }
    guard (1...4).allSatisfy({ context.constantData($0) != nil }) else {
        try translateComputedBatchNorm(context)
        return
    }
    let inputs = try (0...4).map(context.input)
    context.emit(.batchNorm, inputs, ["epsilon": .float(try context.float("epsilon", default: 1e-5)), "axis": .int(1)],
                 shape: context.shape(0))
}

/// A BatchNormalization whose statistics are computed in the graph (tf2onnx writes Keras's fused
/// LayerNormalization as one over the reshaped tokens, with per-token mean and variance) is
/// written out as (x - mean)·(scale / sqrt(variance + ε)) + bias, each vector reshaped to
/// broadcast along axis 1; layer-norm-recognition turns the pattern into one layer_norm.
private func translateComputedBatchNorm(_ context: NodeContext) throws {
    guard let rank = context.shape(0)?.count, rank >= 2 else {
        throw context.fail("its statistics are computed in the graph, and the input's rank is unknown or below 2")
    }
    let epsilon = try context.float("epsilon", default: 1e-5)
    let x = try context.input(0)
    let (scale, bias, mean, variance) = (try context.input(1), try context.input(2), try context.input(3), try context.input(4))
    let perChannel = ["shape": AttributeValue.ints([-1] + Array(repeating: 1, count: rank - 2))]
    let epsilonValue = context.addLiteral("epsilon", TensorData(floats: [epsilon], shape: []))
    let shifted = context.emitStep("variance_plus_epsilon", .add, [variance, epsilonValue])
    let deviation = context.emitStep("deviation", .sqrt, [shifted])
    let factor = context.emitStep("factor", .div, [scale, deviation])
    let centred = context.emitStep("centred", .sub, [x, context.emitStep("mean_per_channel", .reshape, [mean], perChannel)])
    let scaled = context.emitStep("scaled", .mul, [centred, context.emitStep("factor_per_channel", .reshape, [factor], perChannel)])
    context.emit(.add, [scaled, context.emitStep("bias_per_channel", .reshape, [bias], perChannel)], shape: context.shape(0))
}

/// training_mode=1: Y is normalised by the statistics of its own input (mean and biased variance
/// over every axis but the channels), the running mean and variance unused. NF-Nets export their
/// weight standardisation this way on a constant weight, which constant folding evaluates once.
private func translateBatchStatisticsNorm(_ context: NodeContext) throws {
    guard let rank = context.shape(0)?.count, rank >= 2 else {
        throw context.fail("training mode normalises with the input's own statistics, and the input's rank is unknown or below 2")
    }
    if let standardised = try standardisedConstant(context) {
        context.importer.addConstant(name: context.importer.uniqueName(context.node.outputs[0]), data: standardised,
                                     onnxName: context.node.outputs[0])
        return
    }
    let x = try context.input(0)
    let (scale, bias) = (try context.input(1), try context.input(2))
    let reduced: [String: AttributeValue] = ["axes": .ints([0] + Array(2..<rank)), "keepdims": .bool(true)]
    let perChannel = ["shape": AttributeValue.ints([-1] + Array(repeating: 1, count: rank - 2))]
    let epsilonValue = context.addLiteral("epsilon", TensorData(floats: [try context.float("epsilon", default: 1e-5)], shape: []))
    let centred = context.emitStep("centred", .sub, [x, context.emitStep("batch_mean", .reduceMean, [x], reduced)])
    let variance = context.emitStep("batch_variance", .reduceMean, [context.emitStep("squared", .mul, [centred, centred])], reduced)
    let deviation = context.emitStep("deviation", .sqrt, [context.emitStep("variance_plus_epsilon", .add, [variance, epsilonValue])])
    let normalised = context.emitStep("normalised", .div, [centred, deviation])
    let scaled = context.emitStep("scaled", .mul, [normalised, context.emitStep("scale_per_channel", .reshape, [scale], perChannel)])
    context.emit(.add, [scaled, context.emitStep("bias_per_channel", .reshape, [bias], perChannel)], shape: context.shape(0))
}

/// Training-mode BatchNormalization of a constant (a weight standardised in the graph), evaluated
/// here in Double: through the reference loops it took NF-ResNet50 2.5–3 s to load. nil when an
/// operand is not a float32 constant of the expected extents.
private func standardisedConstant(_ context: NodeContext) throws -> TensorData? {
    guard let x = context.constantData(0), x.dtype == .float32, x.shape.count >= 2,
          let scale = context.constantData(1), let bias = context.constantData(2),
          scale.dtype == .float32, bias.dtype == .float32 else { return nil }
    let (outer, channels) = (x.shape[0], x.shape[1])
    let inner = x.shape.dropFirst(2).reduce(1, *)
    guard scale.elementCount == channels, bias.elementCount == channels, outer * inner > 0 else { return nil }
    let epsilon = Double(try context.float("epsilon", default: 1e-5))
    let (values, scales, shifts) = (x.floats(), scale.floats(), bias.floats())
    var result = [Float](repeating: 0, count: values.count)
    let count = Double(outer * inner)
    for channel in 0..<channels {
        let starts = (0..<outer).map { ($0 * channels + channel) * inner }
        var sum = 0.0
        for start in starts { for index in start..<(start + inner) { sum += Double(values[index]) } }
        let mean = sum / count
        var squares = 0.0
        for start in starts {
            for index in start..<(start + inner) {
                let centred = Double(values[index]) - mean
                squares += centred * centred
            }
        }
        let factor = Double(scales[channel]) / (squares / count + epsilon).squareRoot()
        for start in starts {
            for index in start..<(start + inner) {
                result[index] = Float((Double(values[index]) - mean) * factor + Double(shifts[channel]))
            }
        }
    }
    return TensorData(floats: result, shape: x.shape)
}

func translateInstanceNorm(_ context: NodeContext) throws {
    for index in 1...2 where context.constantData(index) == nil {
        throw context.fail("scale and bias must be constants (input \(index) is not)")
    }
    let inputs = try (0...2).map(context.input)
    context.emit(.instanceNorm, inputs, ["epsilon": .float(try context.float("epsilon", default: 1e-5)), "axis": .int(1)],
                 shape: context.shape(0))
}

/// LayerNormalization; its Mean and InvStdDev outputs become the IR node's optional outputs
/// when something reads them.
func translateLayerNorm(_ context: NodeContext) throws {
    for index in 1...2 where context.hasInput(index) && context.constantData(index) == nil {
        throw context.fail("scale and bias must be constants (input \(index) is not)")
    }
    guard try context.int("stash_type", default: 1) == 1 else { throw context.fail("only float32 statistics (stash_type 1) are supported") }
    let inputs = [try context.input(0), try context.input(1)] + (try context.optionalInput(2).map { [$0] } ?? [])
    let axis = try context.int("axis", default: -1)
    let attributes: [String: AttributeValue] = ["epsilon": .float(try context.float("epsilon", default: 1e-5)), "axis": .int(axis)]
    let used = (1..<min(context.node.outputs.count, 3)).filter { context.importer.isUsed(context.node.outputs[$0]) }
    guard let last = used.last else {
        context.emit(.layerNorm, inputs, attributes, shape: context.shape(0))
        return
    }
    var statistics = context.shape(0)
    if let rank = statistics?.count {
        let resolved = axis < 0 ? axis + rank : axis
        for position in 0..<rank where position >= resolved { statistics?[position] = .known(1) }
    }
    context.emit(.layerNorm, inputs, attributes, shapes: [context.shape(0)] + Array(repeating: statistics, count: last))
}

/// Softmax over `axis` since opset 13. Before, it coerced the input to 2-D at `axis` (default
/// 1) and normalised whole rows: the same as a last-axis softmax when `axis` is the last axis,
/// otherwise flatten -> softmax -> reshape back.
func translateSoftmax(_ context: NodeContext, op: OpKind) throws {
    let x = try context.input(0)
    if context.opset >= 13 {
        context.emit(op, [x], ["axis": .int(try context.int("axis", default: -1))], shape: context.shape(0))
        return
    }
    let axis = try context.int("axis", default: 1)
    guard let shape = context.shape(0) else {
        throw context.fail("opset \(context.opset) softmax flattens at axis \(axis), and the input's rank is unknown")
    }
    let rank = shape.count
    let resolved = axis < 0 ? axis + rank : axis
    guard resolved >= 0, resolved < max(rank, 1) else { throw context.fail("axis \(axis) is out of range for rank \(rank)") }
    if resolved == rank - 1 {
        context.emit(op, [x], ["axis": .int(-1)], shape: shape)
        return
    }
    // Reshape back: known extents stay, a single unknown dimension becomes -1.
    let unknown = shape.filter { $0?.value == nil }.count
    guard unknown <= 1 else {
        throw context.fail("opset \(context.opset) softmax over axis \(axis) needs the input's shape, and \(unknown) dimensions are unknown")
    }
    let target = shape.map { $0?.value ?? -1 }
    let flat = context.emitStep("flatten", .flatten, [x], ["axis": .int(resolved)])
    let normalised = context.emitStep(op.rawValue, op, [flat], ["axis": .int(-1)])
    context.emit(.reshape, [normalised], ["shape": .ints(target)], shape: shape)
}
