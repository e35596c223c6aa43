import KeelIR

/// Offers an NCHW model (a PyTorch export) to layout-propagation as if it were a tf2onnx one: an
/// NCHW graph input read by an NCHW convolution or pool gets `transpose(0,2,3,1)` then
/// `transpose(0,3,1,2)` in front of its readers. The second transpose is the entry
/// layout-propagation starts from, so the network behind it runs in NHWC, where Keel's
/// convolution, pooling and 1×1 (dense) kernels are faster than their NCHW forms; only the small
/// input is transposed, once. When layout-propagation keeps the region NCHW, the pair composes to
/// the identity and transpose-cancellation removes it again.
///
/// Needs: shape-inferred graph. Runs just before layout-propagation. A graph input is converted
/// when it is rank 4, declared NCHW or without a layout, and read directly by a conv2d or pooling
/// node whose `layout` is "nchw"; its other readers read the NCHW value as before.
public struct ChannelsLastConversion: Pass {
    public var name: String { "channels-last-conversion" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "NCHW inputs offered as NHWC")
        var explanations: [String] = []
        for input in graph.inputs where input.type.shape.rank == 4 && input.layout != .nhwc {
            let readers = editor.consumers(of: input.name)
            guard let first = readers.first(where: { readsAsNCHWImage($0, input.name) }) else {
                if !readers.isEmpty { explanations.append("kept '\(input.name)': no NCHW convolution or pool reads it") }
                continue
            }
            let channelsLast = editor.unusedName("\(input.name)/to_nhwc")
            let channelsFirst = editor.unusedName("\(input.name)/to_nchw")
            editor.insert(Node(name: channelsLast, op: .transpose, inputs: [input.name], outputs: [channelsLast],
                               attributes: Attributes(["perm": .ints(LayoutPropagation.toNHWC)]), locations: first.locations),
                          before: graph.nodes.first?.name ?? first.name)
            editor.insert(Node(name: channelsFirst, op: .transpose, inputs: [channelsLast], outputs: [channelsFirst],
                               attributes: Attributes(["perm": .ints(LayoutPropagation.toNCHW)]), locations: first.locations),
                          before: graph.nodes.first?.name ?? first.name)
            for reader in readers where reader.inputs.contains(input.name) {
                var rewired = reader
                rewired.inputs = reader.inputs.map { $0 == input.name ? channelsFirst : $0 }
                editor.update(rewired)
            }
            statistic.rewrites += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// A conv2d or pool reading `value` as its NCHW activation.
    private func readsAsNCHWImage(_ node: Node, _ value: String) -> Bool {
        let schema = node.attributeReader.schema
        guard node.op == .conv2d || schema.category == .pooling, node.inputs.first == value,
              schema.attributeSpec("layout") != nil else { return false }
        return (try? node.attributeReader.string("layout")) == "nchw"
    }
}
