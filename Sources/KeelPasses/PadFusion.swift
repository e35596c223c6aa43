import KeelIR

/// Moves a zero Pad of the spatial axes into the conv2d or pool that reads it (Keras writes
/// ZeroPadding2D + a "valid" convolution before every stride-2 layer of ResNet, MobileNet and
/// EfficientNet, and before ResNet's and DenseNet's stem max pool): the reader's explicit pads
/// grow by the Pad's, and the padded copy of the activation is never written.
///
/// Needs: shape-inferred graph. Legal when the Pad adds zeros (value 0), pads only the reader's
/// spatial axes by non-negative amounts, and its output is not a graph output and is read only by
/// convs and pools (as their input, not their weights), every one of which can take the pads
/// (NASNet feeds one padded map to two separable convolutions). A pool also needs floor mode and no dilation; an average pool then counts
/// the padded zeros in its divisor (`count_include_pad`), so its own pads must be none or counted
/// too. A max pool pads with -infinity, not zeros: it takes the pads only when its input is never
/// negative (a ReLU, a clip at or above 0, a sigmoid, or a layer with one of those activations)
/// and every window keeps at least one input pixel, so the zeros never win.
public struct PadFusion: Pass {
    public var name: String { "pad-fusion" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "pads fused")
        var explanations: [String] = []
        for pad in graph.nodes where pad.op == .pad {
            guard let padded = pad.outputs.first, let source = pad.inputs.first, !editor.isGraphOutput(padded)
            else { continue }
            let readers = editor.consumers(of: padded)
            guard !readers.isEmpty, readers.allSatisfy({ reader in
                (reader.op == .conv2d || reader.op == .maxPool2d || reader.op == .avgPool2d)
                    && reader.inputs.first == padded && !reader.inputs.dropFirst().contains(padded)
            }) else { continue }
            // Every reader takes the pads, or the Pad stays for all of them.
            var fusedReaders: [Node] = []
            for reader in readers {
                switch reader.op == .conv2d ? fusedPads(pad, into: reader, in: editor)
                                            : fusedPads(pad, intoPool: reader, in: editor) {
                case .failure(let rejection):
                    explanations.append("kept '\(pad.name)': \(rejection.message)")
                case .success(let pads):
                    var fused = reader
                    fused.inputs[0] = source
                    fused.attributes["padding"] = .string("explicit")
                    fused.attributes["pads"] = .ints(pads)
                    if reader.op == .avgPool2d { fused.attributes["count_include_pad"] = .int(1) }
                    fusedReaders.append(fused)
                }
            }
            guard fusedReaders.count == readers.count else { continue }
            for fused in fusedReaders {
                editor.update(fused)
                editor.absorbLocations(of: pad, into: fused.name)
            }
            editor.removeNode(named: pad.name)
            statistic.rewrites += 1
            statistic.nodesRemoved += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// The conv's pads [top, left, bottom, right] with the Pad's added, or why they cannot be.
    private func fusedPads(_ pad: Node, into conv: Node, in editor: GraphEditor) -> Result<[Int], Rejection> {
        guard let input = editor.graph.valueTypes[pad.outputs[0]]?.shape, conv.inputs.count > 1,
              let kernel = editor.graph.valueTypes[conv.inputs[1]]?.shape,
              let geometry = try? ConvolutionGeometry.resolve(conv, input: input, kernel: kernel) else {
            return .failure(Rejection("the shapes of '\(conv.name)' are unknown"))
        }
        return combinedPads(pad, with: geometry.spatial.pads, layout: geometry.layout)
    }

    /// The pool's pads with the Pad's added, or why the pool cannot take them.
    private func fusedPads(_ pad: Node, intoPool pool: Node, in editor: GraphEditor) -> Result<[Int], Rejection> {
        guard let input = editor.graph.valueTypes[pad.outputs[0]]?.shape,
              let geometry = try? PoolingGeometry.resolve(pool, input: input) else {
            return .failure(Rejection("the shapes of '\(pool.name)' are unknown"))
        }
        let spatial = geometry.spatial
        guard !geometry.ceilMode, spatial.height.dilation == 1, spatial.width.dilation == 1 else {
            return .failure(Rejection("'\(pool.name)' rounds its output up or dilates its window"))
        }
        let current = spatial.pads
        if pool.op == .avgPool2d && !geometry.countIncludePad && current.contains(where: { $0 != 0 }) {
            return .failure(Rejection("'\(pool.name)' leaves its own padding out of the average, the Pad's zeros count"))
        }
        let combined = combinedPads(pad, with: current, layout: geometry.layout)
        guard pool.op == .maxPool2d, case .success(let pads) = combined else { return combined }
        guard isNeverNegative(pad.inputs[0], in: editor) else {
            return .failure(Rejection("'\(pool.name)' pads with -infinity, and its input may be negative"))
        }
        let window = [spatial.height.kernel, spatial.width.kernel, spatial.height.kernel, spatial.width.kernel]
        guard zip(pads, window).allSatisfy({ $0 < $1 }) else {
            return .failure(Rejection("a window of '\(pool.name)' would hold padding only"))
        }
        return combined
    }

    /// `current` [top, left, bottom, right] plus the Pad's spatial amounts in `layout`.
    private func combinedPads(_ pad: Node, with current: [Int], layout: Layout) -> Result<[Int], Rejection> {
        guard let value = try? pad.attributeReader.float("value"), value == 0 else {
            return .failure(Rejection("it pads with a value other than 0"))
        }
        guard let amounts = try? pad.attributeReader.ints("pads"), amounts.count == 8, amounts.allSatisfy({ $0 >= 0 }) else {
            return .failure(Rejection("it does not add a non-negative border to a 4-D tensor"))
        }
        // Axes of height and width, and of batch and channels, in the reader's layout.
        let (spatial, others) = layout == .nhwc ? ([1, 2], [0, 3]) : ([2, 3], [0, 1])
        guard others.allSatisfy({ amounts[$0] == 0 && amounts[$0 + 4] == 0 }) else {
            return .failure(Rejection("it pads the batch or channel axis"))
        }
        return .success([current[0] + amounts[spatial[0]], current[1] + amounts[spatial[1]],
                         current[2] + amounts[spatial[0] + 4], current[3] + amounts[spatial[1] + 4]])
    }

    /// Whether every element of `value` is at least 0 or NaN: made by an activation (a node, or
    /// a conv2d's or dense's fused one) whose results never go below 0.
    private func isNeverNegative(_ value: String, in editor: GraphEditor) -> Bool {
        guard let producer = editor.producer(of: value) else { return false }
        let reader = producer.attributeReader
        let activation: FusedActivation?
        if producer.op == .conv2d || producer.op == .dense {
            activation = try? FusedActivation(reader)
        } else {
            activation = try? reader.schema.epilogueActivation?(reader)
        }
        switch activation {
        case .relu, .sigmoid, .hardSigmoid, .softmax: return true
        case .clip(let low, _): return low >= 0
        default: return false
        }
    }
}
