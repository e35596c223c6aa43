import KeelIR

/// Moves the stride of 1×1 convolutions up into the convolution that produces their input: when
/// every reader of a conv's output samples it with the same stride s (1×1 kernels, no padding),
/// only every s-th row and column of that output is ever read, so the producer computes just
/// those (its stride times s, its pads kept) and the readers run with stride 1. Repeated, the
/// stride climbs as far as 1×1 layers let it: in Keras's ResNet50 (v1, whose stages start with
/// 1×1 stride-2 convolutions) the last block of each stage then runs its 3×3 and final 1×1
/// layers on a quarter of the pixels.
///
/// A producer that adds a residual reads it through a 1×1 max pool with stride s (which only
/// subsamples), so the sum is taken at the pixels kept.
///
/// Needs: shape-inferred graph, run after epilogue fusion (a residual add or activation must be
/// part of the producer, or the add would sit between it and the readers). Legal when the
/// producer is a conv2d without a fused pool whose output is not a graph output, and every
/// reader is a 1×1 conv2d without padding or fused pool reading it as its input (not as a
/// residual) with the same stride s > 1 along height and width.
public struct StrideHoisting: Pass {
    public var name: String { "stride-hoisting" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "strides moved into the producing conv")
        var explanations: [String] = []
        var hoisted = true
        // Each rewrite can expose the next one up (the producer is now a strided 1×1 reader).
        while hoisted {
            hoisted = false
            for producer in editor.graph.nodes where producer.op == .conv2d {
                guard let output = producer.outputs.first, let stride = readerStride(of: output, in: editor) else { continue }
                switch hoist(stride, into: producer, in: &editor) {
                case .some(let problem):
                    let explanation = "kept '\(producer.name)' at its stride: \(problem)"
                    if !explanations.contains(explanation) { explanations.append(explanation) }
                case .none:
                    statistic.rewrites += 1
                    editor = try GraphEditor(inferring: try editor.finished())
                    hoisted = true
                }
                if hoisted { break }
            }
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// The stride every reader of `value` samples it with, when all are 1×1 convs that could run
    /// with stride 1 instead; nil otherwise.
    private func readerStride(of value: String, in editor: GraphEditor) -> Int? {
        let readers = editor.consumers(of: value)
        guard !readers.isEmpty, !editor.isGraphOutput(value) else { return nil }
        var common: Int?
        for reader in readers {
            guard reader.op == .conv2d, reader.inputs.firstIndex(of: value) == 0,
                  reader.inputs.lastIndex(of: value) == 0, let geometry = geometry(of: reader, in: editor),
                  !geometry.fusedMaxPool, !geometry.spatial.hasPadding else { return nil }
            let height = geometry.spatial.height, width = geometry.spatial.width
            guard height.kernel == 1, width.kernel == 1, height.stride > 1, height.stride == width.stride,
                  common == nil || common == height.stride else { return nil }
            common = height.stride
        }
        return common
    }

    /// Rewrites `producer` to compute every `stride`-th pixel and its readers to stride 1, or says
    /// why it cannot.
    private func hoist(_ stride: Int, into producer: Node, in editor: inout GraphEditor) -> String? {
        guard let output = producer.outputs.first, let geometry = geometry(of: producer, in: editor) else {
            return "a shape is unknown"
        }
        guard !geometry.fusedMaxPool else { return "it fuses a max pool" }
        let spatial = geometry.spatial
        let readers = editor.consumers(of: output)
        // The sampled extents the readers produce now, which the strided producer must match.
        guard let sampled = readers.first.flatMap({ self.geometry(of: $0, in: editor) })?.spatial,
              let height = try? AxisGeometry.resolve(input: spatial.height.input, kernel: spatial.height.kernel,
                                                     stride: spatial.height.stride * stride, dilation: spatial.height.dilation,
                                                     padding: .explicit, explicitPads: (spatial.height.padBegin, spatial.height.padEnd)),
              let width = try? AxisGeometry.resolve(input: spatial.width.input, kernel: spatial.width.kernel,
                                                    stride: spatial.width.stride * stride, dilation: spatial.width.dilation,
                                                    padding: .explicit, explicitPads: (spatial.width.padBegin, spatial.width.padEnd)),
              height.output == sampled.outputHeight, width.output == sampled.outputWidth else {
            return "its output sampled every \(stride) pixels is not what its readers produce"
        }
        var strided = producer
        strided.attributes["strides"] = .ints([height.stride, width.stride])
        strided.attributes["padding"] = .string("explicit")
        strided.attributes["pads"] = .ints(spatial.pads)
        if strided.inputs.count > 3, !strided.inputs[3].isEmpty {
            // The residual, laid out as the output, is sampled at the same pixels.
            let residual = strided.inputs[3]
            let name = editor.unusedName("\(producer.name)/strided_residual")
            let sampler = Node(name: name, op: .maxPool2d, inputs: [residual], outputs: [name],
                               attributes: Attributes(["layout": .string(geometry.layout.rawValue),
                                                       "pool_size": .ints([1, 1]), "strides": .ints([stride, stride])]),
                               locations: producer.locations)
            editor.insert(sampler, before: producer.name)
            strided.inputs[3] = name
        }
        editor.update(strided)
        for var reader in readers {
            reader.attributes["strides"] = .ints([1, 1])
            editor.update(reader)
        }
        editor.graph.valueTypes[output] = nil
        return nil
    }

    private func geometry(of conv: Node, in editor: GraphEditor) -> ConvolutionGeometry? {
        guard let input = conv.inputs.first, let inputShape = editor.graph.valueTypes[input]?.shape, conv.inputs.count > 1,
              let kernelShape = editor.graph.valueTypes[conv.inputs[1]]?.shape else { return nil }
        return try? ConvolutionGeometry.resolve(conv, input: inputShape, kernel: kernelShape)
    }
}
