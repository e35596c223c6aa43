import KeelIR

/// `y = x·scale[c] + shift[c]` per output channel: what a BatchNorm at inference, a mul or an
/// add by a per-channel constant, and a bias all are. Folding any of them into the conv2d or
/// dense that produces `x` scales the kernel's output channels and rewrites the bias, which is
/// the one piece of arithmetic BatchNorm folding and epilogue fusion share.
struct ChannelAffine {
    var scale: [Float]
    var shift: [Float]

    var channels: Int { scale.count }

    /// BatchNorm's inference form: scale = γ/√(σ²+ε), shift = β − μ·scale (in Double, so the
    /// folded weights round once).
    static func batchNorm(_ node: Node, in editor: GraphEditor) -> ChannelAffine? {
        guard node.inputs.count == 5, let epsilon = try? node.attributeReader.float("epsilon"),
              let gamma = editor.floats(node.inputs[1]), let beta = editor.floats(node.inputs[2]),
              let mean = editor.floats(node.inputs[3]), let variance = editor.floats(node.inputs[4]),
              Set([gamma.count, beta.count, mean.count, variance.count]).count == 1 else { return nil }
        var result = ChannelAffine(scale: [], shift: [])
        for channel in gamma.indices {
            let scale = Double(gamma[channel]) / (Double(variance[channel]) + Double(epsilon)).squareRoot()
            result.scale.append(Float(scale))
            result.shift.append(Float(Double(beta[channel]) - Double(mean[channel]) * scale))
        }
        return result
    }

    /// A mul, add, sub (x − c or c − x) or div (x / c) of `value` by a constant that varies at most along
    /// `channelAxis` of `shape`; nil for anything else.
    static func elementwise(_ node: Node, reading value: String, shape: Shape, channelAxis: Int,
                            in editor: GraphEditor) -> ChannelAffine? {
        guard node.inputs.count == 2, let channels = shape[channelAxis].value else { return nil }
        let valueFirst = node.inputs[0] == value
        guard valueFirst || node.inputs[1] == value, node.inputs[0] != node.inputs[1] else { return nil }
        let constant = node.inputs[valueFirst ? 1 : 0]
        guard let vector = perChannelVector(constant, shape: shape, channelAxis: channelAxis, in: editor) else { return nil }
        let ones = [Float](repeating: 1, count: channels)
        let zeros = [Float](repeating: 0, count: channels)
        switch node.op {
        case .mul: return ChannelAffine(scale: vector, shift: zeros)
        case .add: return ChannelAffine(scale: ones, shift: vector)
        case .sub where valueFirst: return ChannelAffine(scale: ones, shift: vector.map { -$0 })
        case .sub: return ChannelAffine(scale: ones.map { -$0 }, shift: vector)
        case .div where valueFirst && !vector.contains(0): return ChannelAffine(scale: vector.map { 1 / $0 }, shift: zeros)
        default: return nil
        }
    }

    /// The constant's values broadcast to one per channel, when it is a scalar or varies only
    /// along `channelAxis` (`[C]` and `[1,1,1,C]` for NHWC, `[C,1,1]` and `[1,C,1,1]` for NCHW)
    /// and broadcasting it does not change `shape`.
    static func perChannelVector(_ constant: String, shape: Shape, channelAxis: Int, in editor: GraphEditor) -> [Float]? {
        guard let type = editor.graph.constants[constant]?.type, let values = editor.floats(constant),
              let channels = shape[channelAxis].value, type.shape.rank <= shape.rank,
              let extents = type.shape.knownExtents else { return nil }
        let offset = shape.rank - extents.count
        for (index, extent) in extents.enumerated() where extent != 1 {
            guard index + offset == channelAxis, extent == channels else { return nil }
        }
        if values.count == channels { return values }
        return values.count == 1 ? [Float](repeating: values[0], count: channels) : nil
    }

    /// Where a conv2d's or dense's output channels lie in its output, or nil for other ops.
    static func channelAxis(of node: Node, in graph: Graph) -> Int? {
        guard let output = node.outputs.first, let rank = graph.valueTypes[output]?.shape.rank else { return nil }
        switch node.op {
        case .conv2d:
            guard let layout = try? node.attributeReader.string("layout") else { return nil }
            return Layout(rawValue: layout)?.channelAxis
        case .dense: return rank - 1
        default: return nil
        }
    }

    /// Why this affine cannot be folded into `producer` (a conv2d or dense), or nil when it can:
    /// the producer must apply no activation yet, and the kernel (when scaled) and bias must be
    /// bound constants that only it reads.
    /// A pure shift (a bias add) leaves the kernel alone, so only the bias must be owned.
    var scalesKernel: Bool { scale.contains { $0 != 1 } }

    func absorptionProblem(into producer: Node, in editor: GraphEditor) -> String? {
        guard producer.attributeReader.schema.hasEpilogue else {
            return "its input '\(producer.outputs.first ?? producer.name)' comes from \(producer.op.rawValue) '\(producer.name)', not a conv2d or dense"
        }
        let activation = (try? producer.fusedActivation) ?? .none
        guard activation == .none else { return "'\(producer.name)' already applies activation \"\(activation.kind.rawValue)\"" }
        if producer.inputs.count > 3, !producer.inputs[3].isEmpty {
            return "'\(producer.name)' already adds the residual '\(producer.inputs[3])'"
        }
        for (index, parameter) in producer.inputs.enumerated().dropFirst() where !parameter.isEmpty && (index != 1 || scalesKernel) {
            // A bias other layers also read is copied, not changed (exporters share one zero
            // bias between layers), so only its data must be bound.
            if index == 2 {
                guard editor.graph.constants[parameter]?.data != nil else { return "'\(parameter)' has no data (bind weights first)" }
                continue
            }
            if let problem = editor.exclusiveConstantProblem(parameter, for: producer.name) { return problem }
        }
        return nil
    }

    /// Rewrites `producer`'s kernel (output channel o scaled by scale[o]) and bias
    /// (bias·scale + shift, created when absent). Returns the bytes of weights written.
    func absorb(into producer: Node, in editor: inout GraphEditor) -> Int? {
        guard producer.inputs.count >= 2, let kernelData = editor.graph.constants[producer.inputs[1]]?.data,
              var kernel = editor.floats(producer.inputs[1]), kernel.count % max(channels, 1) == 0,
              let outputFirst = ChannelAffine.kernelOutputAxisIsFirst(producer) else { return nil }
        let perChannel = kernel.count / max(channels, 1)
        if scalesKernel {
            for index in kernel.indices {
                kernel[index] *= scale[outputFirst ? index / perChannel : index % channels]
            }
        }
        var bias = [Float](repeating: 0, count: channels)
        let biasName = producer.inputs.count > 2 && !producer.inputs[2].isEmpty ? producer.inputs[2] : nil
        if let biasName {
            guard let values = editor.floats(biasName), values.count == channels else { return nil }
            bias = values
        }
        let newBias = (0..<channels).map { bias[$0] * scale[$0] + shift[$0] }
        var bytes = scalesKernel ? editor.setConstant(producer.inputs[1], floats: kernel, shape: kernelData.shape) : 0
        var updated = producer
        if let biasName, editor.exclusiveConstantProblem(biasName, for: producer.name) == nil {
            bytes += editor.setConstant(biasName, floats: newBias, shape: [channels])
        } else {
            let kernelConstant = editor.graph.constants[biasName ?? producer.inputs[1]]
            let name = editor.addConstant("\(producer.name)/bias", floats: newBias, shape: [channels], role: .bias,
                                          trainable: kernelConstant?.trainable ?? false, location: kernelConstant?.location)
            bytes += channels * DType.float32.byteSize
            while updated.inputs.count < 3 { updated.inputs.append("") }
            updated.inputs[2] = name
            editor.update(updated)
        }
        return bytes
    }

    /// Whether the kernel stores output channels first (OIHW, dense out_in) or last (HWIO, in_out).
    static func kernelOutputAxisIsFirst(_ node: Node) -> Bool? {
        switch node.op {
        case .conv2d: return (try? node.attributeReader.string("kernel_layout")).map { $0 == "oihw" }
        case .dense: return (try? node.attributeReader.string("weight_layout")).map { $0 == "out_in" }
        default: return nil
        }
    }
}
