import KeelIR

extension GraphImporter {
    /// Keras's Dense exported by tf2onnx is MatMul then Add of a bias vector. Folding the Add
    /// into the dense layer's bias input lets the bias count as the layer's parameter (as in
    /// Keras's summary). The fused node keeps the Add's name and output so readers are unchanged.
    func fuseDenseBias() {
        let consumers = graph.consumers()
        let graphOutputs = Set(graph.outputs.map(\.value))
        var nodes = graph.nodes
        var removed = Set<Int>()
        for index in nodes.indices where nodes[index].op == .dense && nodes[index].inputs.count == 2 {
            let dense = nodes[index]
            let value = dense.outputs[0]
            guard !graphOutputs.contains(value), let readers = consumers[value], readers.count == 1,
                  let addIndex = nodes.firstIndex(where: { $0.name == readers[0] }),
                  nodes[addIndex].op == .add, nodes[addIndex].inputs.count == 2 else { continue }
            let add = nodes[addIndex]
            let other = add.inputs[0] == value ? add.inputs[1] : add.inputs[0]
            guard other != value, let bias = graph.constants[other], let kernel = graph.constants[dense.inputs[1]],
                  bias.type.dtype == kernel.type.dtype, bias.type.shape.rank == 1, kernel.type.shape.rank == 2 else { continue }
            let units = dense.attributes.string("weight_layout") == "out_in" ? kernel.type.shape[0] : kernel.type.shape[1]
            guard bias.type.shape[0] == units else { continue }
            nodes[index] = Node(name: add.name, op: .dense, inputs: dense.inputs + [other], outputs: add.outputs,
                                attributes: dense.attributes, locations: dense.locations + add.locations)
            removed.insert(addIndex)
        }
        graph.nodes = nodes.indices.filter { !removed.contains($0) }.map { nodes[$0] }
    }

    /// ONNX does not say which initializers are weights; how layers use them does. A constant
    /// read as a layer's kernel, bias, gamma, beta or moving statistic takes that role.
    /// ONNX has no trainable flag either. When the model has training information, the
    /// initializers its update bindings name are trainable and the others frozen; otherwise
    /// parameters count as trainable. BatchNorm moving statistics never are (as in Keras), and
    /// literals are not parameters at all.
    func assignParameterRoles() {
        for node in graph.nodes {
            let inputs = OpRegistry.schema(for: node.op).inputs
            for (index, spec) in inputs.enumerated() where spec.isParameter && index < node.inputs.count {
                guard let role = ParameterRole(rawValue: spec.name) else { continue }
                let name = node.inputs[index]
                guard var constant = graph.constants[name], constant.role == .literal else { continue }
                constant.role = role
                constant.trainable = role != .movingMean && role != .movingVariance
                    && (model.trainableInitializers?.contains(name) ?? true)
                graph.constants[name] = constant
            }
        }
    }

    /// Drops the nodes whose results were evaluated into constants while importing, once nothing
    /// reads their outputs (readers of intermediate values keep those nodes).
    func pruneEvaluatedNodes() {
        guard !evaluatedNodeNames.isEmpty else { return }
        var nodes = graph.nodes
        var changed = true
        while changed {
            var read = Set(graph.outputs.map(\.value))
            for node in nodes { read.formUnion(node.presentInputs) }
            let before = nodes.count
            nodes.removeAll { evaluatedNodeNames.contains($0.name) && !$0.outputs.contains(where: read.contains) }
            changed = nodes.count != before
        }
        graph.nodes = nodes
    }

    /// Drops constants nothing reads any more (those only shape arithmetic or attributes used).
    func pruneUnusedConstants() {
        var used = Set(graph.outputs.map(\.value))
        for node in graph.nodes { used.formUnion(node.presentInputs) }
        graph.constants = graph.constants.filter { used.contains($0.key) }
    }
}
