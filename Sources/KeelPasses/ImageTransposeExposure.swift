import KeelIR

/// Rewrites how exporters turn a transformer's tokens into an image and back so that the NCHW
/// region in between shows layout propagation its entry and exit. Tokens [N, H·W, C] become an
/// image as transpose → [N, C, H·W] → reshape → [N, C, H, W] (PVT v2's and XCiT's depthwise
/// convolutions between their dense layers), and go back as reshape → [N, C, H·W] → transpose →
/// [N, H·W, C]. The same moves are a reshape to [N, H, W, C] then a transpose to NCHW, and a
/// transpose to NHWC then a reshape; layout propagation then runs the image part NHWC and both
/// transposes cancel. Left as written they kept those convolutions NCHW between two transposes
/// of the whole map (PVT v2-B0 at batch 1: 2.8 of its 13.3 ms in transposes).
///
/// Needs: shape-inferred graph. Legal when the intermediate [N, C, H·W] value has no other reader
/// and is not a graph output, and C, H and W are known.
public struct ImageTransposeExposure: Pass {
    public var name: String { "image-transpose-exposure" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "token transposes moved to the image side")
        for candidate in graph.nodes {
            guard let node = editor.node(named: candidate.name), let input = node.inputs.first,
                  let producer = editor.producer(of: input),
                  editor.soleConsumer(of: producer.outputs[0]) != nil, !editor.isGraphOutput(producer.outputs[0]),
                  let middle = editor.graph.valueTypes[producer.outputs[0]]?.shape.dims, middle.count == 3,
                  let channels = middle[1].value else { continue }
            let tokensToImage = producer.op == .transpose && node.op == .reshape
            let (transpose, image) = tokensToImage ? (producer, node.outputs[0]) : (node, producer.inputs[0])
            guard tokensToImage || (producer.op == .reshape && node.op == .transpose),
                  TransposeCancellation.permutation(of: transpose, in: editor.graph) == [0, 2, 1],
                  let dims = editor.graph.valueTypes[image]?.shape.dims, dims.count == 4, dims[1] == middle[1],
                  let height = dims[2].value, let width = dims[3].value, middle[2].value == height * width else { continue }
            // tokens → [N, H, W, C] → NCHW, or NCHW → [N, H, W, C] → tokens.
            let reshape = (OpKind.reshape, Attributes(["shape": .ints(tokensToImage ? [0, height, width, channels]
                                                                                   : [0, height * width, channels])]))
            let permute = (OpKind.transpose, Attributes(["perm": .ints(tokensToImage ? [0, 3, 1, 2] : [0, 2, 3, 1])]))
            let (first, second) = tokensToImage ? (reshape, permute) : (permute, reshape)
            let channelsLast = editor.unusedName("\((tokensToImage ? node : producer).name)/nhwc")
            editor.insert(Node(name: channelsLast, op: first.0, inputs: [producer.inputs[0]], outputs: [channelsLast],
                               attributes: first.1, locations: producer.locations), before: node.name)
            editor.update(Node(name: node.name, op: second.0, inputs: [channelsLast], outputs: node.outputs,
                               attributes: second.1, locations: producer.locations + node.locations))
            editor.removeNode(named: producer.name)
            statistic.rewrites += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic)
    }
}
