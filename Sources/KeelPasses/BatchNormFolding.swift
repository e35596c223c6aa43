import KeelIR

/// Folds inference-time BatchNorm, and the mul-then-add by per-channel constants that tf2onnx
/// emits for it, into the weights of the conv2d or dense that produces its input. When the
/// producer cannot take it, a BatchNorm whose only reader is a dense folds forward into that
/// dense instead (Dense -> BN -> ReLU -> Dense folds backward; BN -> Dense folds forward).
///
/// Needs: shape-inferred graph, bound constants. Legal only when the producer's output has one
/// reader and is not a graph output, the producer applies no activation yet, the BN axis is
/// the producer's channel axis, and the rewritten kernel and bias are read by that node alone.
public struct BatchNormFolding: Pass {
    public var name: String { "batch-norm-folding" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "batch norms and scale/shift ops folded")
        var explanations: [String] = []
        for name in graph.nodes.map(\.name) {
            guard let node = editor.node(named: name) else { continue }
            switch node.op {
            case .batchNorm:
                switch foldBatchNorm(node, in: &editor) {
                case .success(let bytes):
                    statistic.rewrites += 1
                    statistic.nodesRemoved += 1
                    statistic.weightBytesChanged += bytes
                case .failure(let reason):
                    explanations.append("kept '\(node.name)': \(reason.message)")
                }
            case .mul, .add, .sub, .div:
                switch foldScaleOrShift(node, in: &editor) {
                case .success(let bytes):
                    statistic.rewrites += 1
                    statistic.nodesRemoved += 1
                    statistic.weightBytesChanged += bytes
                case .failure(let reason):
                    if !reason.message.isEmpty { explanations.append("kept '\(node.name)': \(reason.message)") }
                }
            default:
                continue
            }
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// Backward into the producer when legal, else forward into a dense reader.
    private func foldBatchNorm(_ node: Node, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        guard let affine = ChannelAffine.batchNorm(node, in: editor) else {
            return .failure(Rejection("its parameters are not bound float constants"))
        }
        let input = node.inputs[0]
        guard let output = node.outputs.first, let shape = editor.graph.valueTypes[input]?.shape,
              let axis = try? node.attributeReader.int("axis"), let channelAxis = shape.normalizedAxis(axis) else {
            return .failure(Rejection("its input '\(input)' has no inferred type"))
        }
        let backward = backwardProblem(affine, input: input, channelAxis: channelAxis, in: editor)
        if backward == nil, let producer = editor.producer(of: input), let bytes = affine.absorb(into: producer, in: &editor) {
            editor.removeNode(named: node.name)
            editor.forward(output, to: input)
            editor.absorbLocations(of: node, into: producer.name)
            return .success(bytes)
        }
        let forward = forwardProblem(node, channelAxis: channelAxis, rank: shape.rank, in: editor)
        if forward == nil, let reader = editor.soleConsumer(of: output),
           let bytes = foldForward(affine, into: reader, in: &editor) {
            editor.removeNode(named: node.name)
            editor.forward(output, to: input)
            editor.absorbLocations(of: node, into: reader.name)
            return .success(bytes)
        }
        // Only mention the forward fold when there was a dense to fold into.
        let feedsDense = editor.consumers(of: output).contains { $0.op == .dense }
        let reasons = [backward, feedsDense ? forward.map { "and it cannot fold forward: \($0)" } : nil].compactMap { $0 }
        return .failure(Rejection(reasons.joined(separator: "; ")))
    }

    /// A mul/add/sub/div by a per-channel constant right after a conv2d or dense. Nodes that are
    /// not such candidates fail with an empty message (nothing to explain).
    private func foldScaleOrShift(_ node: Node, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        for input in node.inputs {
            guard let producer = editor.producer(of: input), producer.attributeReader.schema.hasEpilogue,
                  let channelAxis = ChannelAffine.channelAxis(of: producer, in: editor.graph),
                  let shape = editor.graph.valueTypes[input]?.shape,
                  let affine = ChannelAffine.elementwise(node, reading: input, shape: shape, channelAxis: channelAxis, in: editor),
                  let output = node.outputs.first else { continue }
            if let problem = backwardProblem(affine, input: input, channelAxis: channelAxis, in: editor) {
                return .failure(Rejection(problem))
            }
            guard let bytes = affine.absorb(into: producer, in: &editor) else { continue }
            editor.removeNode(named: node.name)
            editor.forward(output, to: input)
            editor.absorbLocations(of: node, into: producer.name)
            return .success(bytes)
        }
        return mergeWithAffineProducer(node, in: &editor)
    }

    /// A mul/add/sub/div by a per-channel constant whose input is another such op, or a
    /// batch_norm, that nothing else reads, with no conv2d or dense to fold into (Keras's Rescaling
    /// and Normalization layers on the image): the two become one batch_norm of the composed
    /// scale and shift (in Double, epsilon 0, mean 0, variance 1), one pass over the tensor
    /// instead of two. A chain merges pair by pair, since each merged node is the next one's producer.
    private func mergeWithAffineProducer(_ node: Node, in editor: inout GraphEditor) -> Result<Int, Rejection> {
        for input in node.inputs {
            guard let producer = editor.producer(of: input), let output = node.outputs.first,
                  editor.singleUseProblem(of: input) == nil, let shape = editor.graph.valueTypes[input]?.shape,
                  shape.rank > 0 else { continue }
            for channelAxis in Set([shape.rank - 1, min(1, shape.rank - 1)]).sorted(by: >) {
                guard let second = ChannelAffine.elementwise(node, reading: input, shape: shape, channelAxis: channelAxis,
                                                             in: editor),
                      let (data, first) = Self.affine(producer, channelAxis: channelAxis, shape: shape, in: editor)
                else { continue }
                let channels = first.channels
                var scale = [Float](), shift = [Float]()
                for channel in 0..<channels {
                    let outer = Double(second.scale[channel])
                    scale.append(Float(Double(first.scale[channel]) * outer))
                    shift.append(Float(Double(first.shift[channel]) * outer + Double(second.shift[channel])))
                }
                let location = node.location
                func constant(_ suffix: String, _ values: [Float], _ role: ParameterRole) -> String {
                    editor.addConstant("\(node.name)_\(suffix)", floats: values, shape: [channels], role: role,
                                       trainable: false, location: location)
                }
                let inputs = [data, constant("scale", scale, .gamma), constant("shift", shift, .beta),
                              constant("mean", [Float](repeating: 0, count: channels), .movingMean),
                              constant("variance", [Float](repeating: 1, count: channels), .movingVariance)]
                var merged = Node(name: node.name, op: .batchNorm, inputs: inputs, outputs: [output],
                                  attributes: Attributes(["epsilon": .float(0), "axis": .int(channelAxis)]),
                                  locations: producer.locations)
                for location in node.locations where !merged.locations.contains(location) { merged.locations.append(location) }
                editor.removeNode(named: producer.name)
                editor.update(merged)
                return .success(4 * channels * 4)
            }
        }
        return .failure(Rejection(""))
    }

    /// The data input and affine of a per-channel mul/add/sub/div or a constant batch_norm on
    /// `channelAxis`, whose data input is an activation (not a constant).
    private static func affine(_ node: Node, channelAxis: Int, shape: Shape,
                               in editor: GraphEditor) -> (String, ChannelAffine)? {
        if node.op == .batchNorm {
            guard let affine = ChannelAffine.batchNorm(node, in: editor), let data = node.inputs.first,
                  (try? node.fusedActivation) == FusedActivation.none,
                  let axis = try? node.attributeReader.int("axis"), shape.normalizedAxis(axis) == channelAxis,
                  affine.channels == shape[channelAxis].value else { return nil }
            return (data, affine)
        }
        guard [.mul, .add, .sub, .div].contains(node.op) else { return nil }
        for data in node.inputs where editor.graph.constants[data] == nil {
            guard let affine = ChannelAffine.elementwise(node, reading: data, shape: shape, channelAxis: channelAxis,
                                                         in: editor) else { continue }
            return (data, affine)
        }
        return nil
    }

    /// Why an affine node reading `input` on `channelAxis` cannot fold into `input`'s producer.
    private func backwardProblem(_ affine: ChannelAffine, input: String, channelAxis: Int, in editor: GraphEditor) -> String? {
        guard let producer = editor.producer(of: input) else {
            return "its input '\(input)' is a graph input or constant, not a conv2d or dense output"
        }
        if let problem = affine.absorptionProblem(into: producer, in: editor) { return problem }
        if let problem = editor.singleUseProblem(of: input) { return "its input \(problem)" }
        guard ChannelAffine.channelAxis(of: producer, in: editor.graph) == channelAxis else {
            return "it normalises axis \(channelAxis), not the channel axis of \(producer.op.rawValue) '\(producer.name)'"
        }
        return nil
    }

    /// Why a BatchNorm cannot fold into the dense that reads it: it must be that dense's only
    /// input use, on the feature (last) axis, with the dense's weights its own.
    private func forwardProblem(_ node: Node, channelAxis: Int, rank: Int, in editor: GraphEditor) -> String? {
        guard let output = node.outputs.first else { return "it has no output" }
        if let problem = editor.singleUseProblem(of: output) { return problem }
        guard let reader = editor.consumers(of: output).first, reader.op == .dense, reader.inputs.first == output,
              !reader.inputs.dropFirst().contains(output) else {
            let reader = editor.consumers(of: output).first.map { "\($0.op.rawValue) '\($0.name)'" } ?? "nothing"
            return "it feeds \(reader), not a dense"
        }
        guard channelAxis == rank - 1 else { return "it normalises axis \(channelAxis), not the features dense '\(reader.name)' reads" }
        for parameter in reader.inputs.dropFirst() where !parameter.isEmpty {
            if let problem = editor.exclusiveConstantProblem(parameter, for: reader.name) { return problem }
        }
        return nil
    }

    /// y = (x·s + t)·W + b  =  x·(diag(s)·W) + (t·W + b): scales the kernel's input rows and
    /// moves the shift into the bias (created when absent).
    private func foldForward(_ affine: ChannelAffine, into dense: Node, in editor: inout GraphEditor) -> Int? {
        guard dense.inputs.count >= 2, let data = editor.graph.constants[dense.inputs[1]]?.data, data.shape.count == 2,
              var kernel = editor.floats(dense.inputs[1]),
              let outFirst = ChannelAffine.kernelOutputAxisIsFirst(dense) else { return nil }
        let (inputs, outputs) = outFirst ? (data.shape[1], data.shape[0]) : (data.shape[0], data.shape[1])
        guard inputs == affine.channels else { return nil }
        let biasName = dense.inputs.count > 2 && !dense.inputs[2].isEmpty ? dense.inputs[2] : nil
        var bias = biasName.flatMap { editor.floats($0) }.map { $0.map(Double.init) } ?? [Double](repeating: 0, count: outputs)
        guard bias.count == outputs else { return nil }
        for input in 0..<inputs {
            for output in 0..<outputs {
                let index = outFirst ? output * inputs + input : input * outputs + output
                bias[output] += Double(affine.shift[input]) * Double(kernel[index])
                kernel[index] *= affine.scale[input]
            }
        }
        var bytes = editor.setConstant(dense.inputs[1], floats: kernel, shape: data.shape)
        let newBias = bias.map { Float($0) }
        if let biasName {
            bytes += editor.setConstant(biasName, floats: newBias, shape: [outputs])
        } else {
            let kernelConstant = editor.graph.constants[dense.inputs[1]]
            let name = editor.addConstant("\(dense.name)/bias", floats: newBias, shape: [outputs], role: .bias,
                                          trainable: kernelConstant?.trainable ?? false, location: kernelConstant?.location)
            var updated = dense
            while updated.inputs.count < 3 { updated.inputs.append("") }
            updated.inputs[2] = name
            editor.update(updated)
            bytes += outputs * DType.float32.byteSize
        }
        return bytes
    }
}

/// Why a candidate was left alone: one line for `--explain`.
struct Rejection: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
