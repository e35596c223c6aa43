/// Keras's `model.summary()` for an IR graph: one row per layer with its output shape and
/// parameter count, plus multiply-accumulates per image, and the totals Keras prints.
public struct ModelSummary: Hashable, Sendable, CustomStringConvertible {
    public struct Row: Hashable, Sendable {
        public var name: String
        /// The op's IR spelling (`conv2d`), or `input` for a graph input.
        public var op: String
        /// Nil when shape inference has not typed the value.
        public var outputType: TensorType?
        public var parameters: Int
        public var trainableParameters: Int
        /// conv2d: outH·outW·kh·kw·(cin/groups)·cout; dense: in·out per row of the non-batch
        /// axes; matmul: M·K·N per batch element. Other ops count 0: they are cheap and
        /// memory-bound beside these.
        public var macsPerImage: Int
    }

    public var rows: [Row]
    /// Every parameter constant once (role other than literal), as Keras's "Total params".
    public var totalParameters: Int
    public var trainableParameters: Int
    public var nonTrainableParameters: Int { totalParameters - trainableParameters }
    /// Int.max when the sum does not fit (each row saturates the same way).
    public var totalMACsPerImage: Int {
        rows.reduce(0) { total, row in
            let (sum, overflow) = total.addingReportingOverflow(row.macsPerImage)
            return overflow ? Int.max : sum
        }
    }

    /// Reads output shapes from `graph.valueTypes` (run shape inference first for shapes and MACs).
    public init(_ graph: Graph) {
        var rows = graph.inputs.map {
            Row(name: $0.name, op: "input", outputType: $0.type, parameters: 0, trainableParameters: 0, macsPerImage: 0)
        }
        for node in graph.nodes {
            var seen = Set<String>()
            var parameters = 0
            var trainable = 0
            for input in node.presentInputs where seen.insert(input).inserted {
                guard let constant = graph.constants[input], constant.isParameter else { continue }
                parameters += constant.elementCount
                if constant.trainable { trainable += constant.elementCount }
            }
            rows.append(Row(name: node.name, op: node.op.rawValue, outputType: node.outputs.first.flatMap { graph.valueTypes[$0] },
                            parameters: parameters, trainableParameters: trainable,
                            macsPerImage: ModelSummary.macsPerImage(of: node, in: graph)))
        }
        self.rows = rows
        let parameters = graph.orderedConstants.filter(\.isParameter)
        totalParameters = parameters.reduce(0) { $0 + $1.elementCount }
        trainableParameters = parameters.filter(\.trainable).reduce(0) { $0 + $1.elementCount }
    }

    public static func macsPerImage(of node: Node, in graph: Graph) -> Int {
        let inputs = node.inputs.map { $0.isEmpty ? nil : graph.type(of: $0) }
        guard inputs.count >= 2, let first = inputs[0], let second = inputs[1] else { return 0 }
        switch OpRegistry.schema(for: node.op).category {
        case .convolution:
            if node.op == .convTranspose {
                return (try? TransposedConvolutionGeometry.resolve(node, input: first.shape, kernel: second.shape).macsPerImage) ?? 0
            }
            return (try? ConvolutionGeometry.resolve(node, input: first.shape, kernel: second.shape).macsPerImage) ?? 0
        case .matrixProduct:
            if node.op == .dense {
                guard let geometry = try? DenseGeometry.resolve(node, input: first.shape, kernel: second.shape) else { return 0 }
                let rows = first.shape.dims.dropFirst().dropLast().map { $0.value ?? 1 }
                return Shape.saturatingProduct(rows + [geometry.inputFeatures, geometry.outputFeatures])
            }
            guard let output = node.outputs.first.flatMap({ graph.valueTypes[$0] }), let inner = first.shape.dims.last?.value else { return 0 }
            let perImage = output.shape.rank >= 2 ? output.shape.dims.dropFirst() : output.shape.dims[...]
            return Shape.saturatingProduct(perImage.map { $0.value ?? 1 } + [inner])
        case .pooling, .normalization, .unaryElementwise, .broadcastElementwise, .reduction, .view, .dataMovement:
            // Linear in the elements: negligible beside the products, and not multiply-accumulates.
            return 0
        }
    }

    /// A table in the spirit of Keras's summary, with totals at the bottom.
    public var description: String {
        let header = ["Layer (type)", "Output Shape", "Param #", "MACs/image"]
        let body = rows.map { row in
            ["\(row.name) (\(row.op))", row.outputType.map { $0.shape.description } ?? "?",
             formatCount(row.parameters), ModelSummary.macsText(row.macsPerImage)]
        }
        let widths = (0..<header.count).map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                return index >= 2 ? padding + cell : cell + padding
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "─", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        return ([line(header), rule] + body.map(line) + [rule,
            "Total params: \(formatCount(totalParameters))",
            "Trainable params: \(formatCount(trainableParameters))",
            "Non-trainable params: \(formatCount(nonTrainableParameters))",
            "MACs per image: \(ModelSummary.macsText(totalMACsPerImage))"]).joined(separator: "\n")
    }

    /// A saturated count says so rather than printing Int.max as if it were exact.
    static func macsText(_ macs: Int) -> String {
        macs == Int.max ? "over \(formatCount(Int.max - 1))" : formatCount(macs)
    }
}
