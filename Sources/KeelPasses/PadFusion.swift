import KeelIR

/// Moves a zero Pad of the spatial axes into the conv2d that reads it (Keras writes ZeroPadding2D
/// + a "valid" convolution before every stride-2 layer of ResNet, MobileNet and EfficientNet): the
/// conv's explicit pads grow by the Pad's, and the padded copy of the activation is never written.
///
/// Needs: shape-inferred graph. Legal when the Pad adds zeros (value 0), pads only the conv's
/// spatial axes by non-negative amounts, and its output has one reader, the conv, and is not a
/// graph output.
public struct PadFusion: Pass {
    public var name: String { "pad-fusion" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "pads fused")
        var explanations: [String] = []
        for pad in graph.nodes where pad.op == .pad {
            guard let padded = pad.outputs.first, let source = pad.inputs.first,
                  let conv = editor.soleConsumer(of: padded), conv.op == .conv2d, conv.inputs.first == padded else { continue }
            switch fusedPads(pad, into: conv, in: editor) {
            case .failure(let rejection):
                explanations.append("kept '\(pad.name)': \(rejection.message)")
            case .success(let pads):
                var fused = conv
                fused.inputs[0] = source
                fused.attributes["padding"] = .string("explicit")
                fused.attributes["pads"] = .ints(pads)
                editor.update(fused)
                editor.removeNode(named: pad.name)
                editor.absorbLocations(of: pad, into: conv.name)
                statistic.rewrites += 1
                statistic.nodesRemoved += 1
            }
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// The conv's pads [top, left, bottom, right] with the Pad's added, or why they cannot be.
    private func fusedPads(_ pad: Node, into conv: Node, in editor: GraphEditor) -> Result<[Int], Rejection> {
        guard let value = try? pad.attributeReader.float("value"), value == 0 else {
            return .failure(Rejection("it pads with a value other than 0"))
        }
        guard let amounts = try? pad.attributeReader.ints("pads"), amounts.count == 8, amounts.allSatisfy({ $0 >= 0 }) else {
            return .failure(Rejection("it does not add a non-negative border to a 4-D tensor"))
        }
        guard let input = editor.graph.valueTypes[pad.outputs[0]]?.shape, conv.inputs.count > 1,
              let kernel = editor.graph.valueTypes[conv.inputs[1]]?.shape,
              let geometry = try? ConvolutionGeometry.resolve(conv, input: input, kernel: kernel) else {
            return .failure(Rejection("the shapes of '\(conv.name)' are unknown"))
        }
        // Axes of height and width, and of batch and channels, in the conv's layout.
        let (spatial, others) = geometry.layout == .nhwc ? ([1, 2], [0, 3]) : ([2, 3], [0, 1])
        guard others.allSatisfy({ amounts[$0] == 0 && amounts[$0 + 4] == 0 }) else {
            return .failure(Rejection("it pads the batch or channel axis"))
        }
        let current = geometry.spatial.pads
        return .success([current[0] + amounts[spatial[0]], current[1] + amounts[spatial[1]],
                         current[2] + amounts[spatial[0] + 4], current[3] + amounts[spatial[1] + 4]])
    }
}
