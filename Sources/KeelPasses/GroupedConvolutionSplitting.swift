import KeelIR

/// Splits a 3×3 stride-1 NHWC convolution of a few wide groups (ResNeSt's split attention: two
/// groups of 32–256 input channels) into one convolution per group between a split of its input
/// and a concatenation of their outputs. Each is then an ordinary convolution the runtime can run
/// on Winograd tiles, which multiply a quarter as much as the grouped form's im2col products; the
/// split and the concatenation copy the input and output once, and a split of the output back into
/// the groups' channels reads the groups' outputs instead.
///
/// Needs: shape-inferred graph with bound weights; runs after batch-norm-folding and
/// epilogue-fusion so that each group inherits the folded filter, bias and activation. Legal
/// when the groups number 2 to `maximumGroups`, each has at least `minimumGroupChannels` input and
/// output channels, the filter (and bias) are read by this convolution alone, and it neither adds
/// a residual nor pools.
public struct GroupedConvolutionSplitting: Pass {
    public var name: String { "grouped-conv-split" }

    /// More groups of fewer channels each suit the grouped kernel better (ResNeXt's 32; RegNetY-1.6GF
    /// with its 5 and 14 groups of 24 split too ran 18.4 → 20.8 ms at batch 1).
    static let maximumGroups = 4
    /// Winograd's own minimum (`WinogradChoice.minimumChannels`).
    static let minimumGroupChannels = 16

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "grouped convolutions split by group")
        for candidate in graph.nodes where candidate.op == .conv2d {
            guard let groups = splittable(candidate, in: editor) else { continue }
            split(candidate, groups: groups, in: &editor)
            statistic.rewrites += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic)
    }

    /// The number of groups when `node` qualifies.
    private func splittable(_ node: Node, in editor: GraphEditor) -> Int? {
        let attributes = node.attributes
        guard let groups = attributes.int("groups"), (2...Self.maximumGroups).contains(groups),
              (attributes.string("layout") ?? "nhwc") == "nhwc", (attributes.string("pool") ?? "none") == "none",
              (attributes.ints("strides") ?? [1, 1]) == [1, 1], (attributes.ints("dilations") ?? [1, 1]) == [1, 1],
              node.inputs.count <= 3, let kernel = editor.graph.constants[node.inputs[1]]?.type.shape.knownExtents,
              editor.exclusiveConstantProblem(node.inputs[1], for: node.name) == nil, editor.floats(node.inputs[1]) != nil,
              biasName(of: node).map({ editor.exclusiveConstantProblem($0, for: node.name) == nil && editor.floats($0) != nil }) ?? true,
              let input = editor.graph.valueTypes[node.inputs[0]]?.shape, input.rank == 4,
              let inputChannels = input[3].value, let output = editor.graph.valueTypes[node.outputs[0]]?.shape,
              output.rank == 4, let outputChannels = output[3].value,
              inputChannels % groups == 0, outputChannels % groups == 0,
              inputChannels / groups >= Self.minimumGroupChannels, outputChannels / groups >= Self.minimumGroupChannels
        else { return nil }
        let spatial = attributes.string("kernel_layout") == "oihw" ? Array(kernel.suffix(2)) : Array(kernel.prefix(2))
        return spatial == [3, 3] ? groups : nil
    }

    private func biasName(of node: Node) -> String? {
        node.inputs.count > 2 && !node.inputs[2].isEmpty ? node.inputs[2] : nil
    }

    private func split(_ node: Node, groups: Int, in editor: inout GraphEditor) {
        let graph = editor.graph
        guard let kernelConstant = graph.constants[node.inputs[1]], let kernel = editor.floats(node.inputs[1]),
              let kernelShape = kernelConstant.type.shape.knownExtents else { return }
        let bias = biasName(of: node).flatMap(editor.floats)
        let oihw = node.attributes.string("kernel_layout") == "oihw"
        let outputChannels = oihw ? kernelShape[0] : kernelShape[3]
        let groupOutputs = outputChannels / groups
        let location = node.locations.first
        let splitName = editor.unusedName("\(node.name)/groups")
        let pieces = (0..<groups).map { editor.unusedName("\(splitName):\($0)") }
        editor.insert(Node(name: splitName, op: .split, inputs: [node.inputs[0]], outputs: pieces,
                           attributes: Attributes(["axis": .int(3)]), locations: node.locations), before: node.name)
        var results: [String] = []
        for group in 0..<groups {
            let columns = group * groupOutputs..<(group + 1) * groupOutputs
            let (filter, shape): ([Float], [Int])
            if oihw {
                // [O, I/g, kh, kw]: the group's filters are consecutive rows.
                let row = kernel.count / outputChannels
                filter = Array(kernel[columns.lowerBound * row..<columns.upperBound * row])
                shape = [groupOutputs] + kernelShape.dropFirst()
            } else {
                // [kh, kw, I/g, O]: the group's columns of every row.
                filter = stride(from: 0, to: kernel.count, by: outputChannels).flatMap { kernel[($0 + columns.lowerBound)..<($0 + columns.upperBound)] }
                shape = Array(kernelShape.dropLast()) + [groupOutputs]
            }
            var inputs = [pieces[group],
                          editor.addConstant("\(node.inputs[1])/group\(group)", floats: filter, shape: shape, role: .kernel,
                                             trainable: kernelConstant.trainable, location: location)]
            if let bias {
                inputs.append(editor.addConstant("\(node.inputs[2])/group\(group)", floats: Array(bias[columns]),
                                                 shape: [groupOutputs], role: .bias,
                                                 trainable: graph.constants[node.inputs[2]]?.trainable ?? false,
                                                 location: location))
            }
            var attributes = node.attributes
            attributes["groups"] = .int(1)
            let name = editor.unusedName("\(node.name)/group\(group)")
            editor.insert(Node(name: name, op: .conv2d, inputs: inputs, outputs: [name], attributes: attributes,
                               locations: node.locations), before: node.name)
            results.append(name)
        }
        editor.update(Node(name: node.name, op: .concat, inputs: results, outputs: node.outputs,
                           attributes: Attributes(["axis": .int(3)]), locations: node.locations))
        // A reader that splits the output back into the groups' channels (ResNeSt sums its radix
        // pieces, which are the groups) reads the groups' outputs instead.
        for reader in editor.consumers(of: node.outputs[0]) where reader.op == .split && reader.outputs.count == groups
            && reader.attributes.int("axis") == 3
            && (reader.attributes.ints("sizes") ?? Array(repeating: groupOutputs, count: groups)) == Array(repeating: groupOutputs, count: groups)
            && zip(reader.outputs, results).allSatisfy({ editor.canForward($0, to: $1) }) {
            editor.removeNode(named: reader.name)
            for (piece, result) in zip(reader.outputs, results) { editor.forward(piece, to: result) }
        }
    }
}
