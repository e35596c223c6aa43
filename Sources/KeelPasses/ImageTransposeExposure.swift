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
            switch (producer.op, node.op) {
            case (.transpose, .reshape):
                // tokens → [N, C, H·W] → [N, C, H, W]
                guard TransposeCancellation.permutation(of: producer, in: editor.graph) == [0, 2, 1],
                      let image = editor.graph.valueTypes[node.outputs[0]]?.shape.dims, image.count == 4,
                      image[1] == middle[1], let height = image[2].value, let width = image[3].value,
                      middle[2].value == height * width else { continue }
                let channelsLast = editor.unusedName("\(node.name)/nhwc")
                editor.insert(Node(name: channelsLast, op: .reshape, inputs: [producer.inputs[0]], outputs: [channelsLast],
                                   attributes: Attributes(["shape": .ints([0, height, width, channels])]),
                                   locations: node.locations), before: node.name)
                editor.update(Node(name: node.name, op: .transpose, inputs: [channelsLast], outputs: node.outputs,
                                   attributes: Attributes(["perm": .ints([0, 3, 1, 2])]),
                                   locations: producer.locations + node.locations))
            case (.reshape, .transpose):
                // [N, C, H, W] → [N, C, H·W] → tokens
                guard TransposeCancellation.permutation(of: node, in: editor.graph) == [0, 2, 1],
                      let image = editor.graph.valueTypes[producer.inputs[0]]?.shape.dims, image.count == 4,
                      image[1] == middle[1], let height = image[2].value, let width = image[3].value,
                      middle[2].value == height * width else { continue }
                let channelsLast = editor.unusedName("\(producer.name)/nhwc")
                editor.insert(Node(name: channelsLast, op: .transpose, inputs: [producer.inputs[0]], outputs: [channelsLast],
                                   attributes: Attributes(["perm": .ints([0, 2, 3, 1])]), locations: producer.locations),
                              before: node.name)
                editor.update(Node(name: node.name, op: .reshape, inputs: [channelsLast], outputs: node.outputs,
                                   attributes: Attributes(["shape": .ints([0, height * width, channels])]),
                                   locations: producer.locations + node.locations))
            default:
                continue
            }
            editor.removeNode(named: producer.name)
            statistic.rewrites += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic)
    }
}
