import KeelIR
import KeelONNX

/// What kind of layer a group of ONNX weights belongs to, judged from the nodes that read them.
enum WeightLayerKind: String {
    case conv, dense
    /// A BatchNormalization node: scale, B, mean, var.
    case batchNorm = "batch norm"
    /// A LayerNormalization node: scale, B.
    case layerNorm = "layer norm"
    /// `x * scale + shift` with per-channel constants: tf2onnx's folded BatchNormalization,
    /// and the tail of a decomposed LayerNormalization.
    case scaleShift = "scale-shift"
}

/// The order a flattening source lays out image features in.
enum FlattenOrder: String {
    case nchw = "c,h,w"
    case nhwc = "h,w,c"
}

/// A named weight tensor: an initializer, or the value of a Constant node.
struct SourceTensor {
    var name: String
    var data: TensorData
}

/// One layer's weights in an ONNX model: the tensors by slot, how they are laid out, and the
/// names a Keras layer name could be found among.
struct SourceLayer {
    var kind: WeightLayerKind
    /// The ONNX node that reads the main weight, for messages.
    var node: String
    /// `weight`, `bias` (conv, dense); `scale`, `shift`, `mean`, `variance` (normalisations).
    var tensors: [String: SourceTensor]
    /// Dense only: true when the weight is `[out,in]` (Gemm with transB=1).
    var transposedWeight = false
    /// Dense only: the order of the flatten feeding it, when one does.
    var flattenOrder: FlattenOrder?
    /// BatchNormalization only.
    var epsilon: Float?
    /// Path components of the node and tensor names (`model/dense/MatMul` -> model, dense, MatMul),
    /// with tf2onnx's `:0` output suffix dropped: Keras layer names appear among them.
    var nameParts: Set<String>
}

/// Reads an ONNX graph for the layers that carry weights, in the order its nodes consume them.
struct SourceLayerReader {
    let graph: ONNXGraph
    private var tensors: [String: SourceTensor] = [:]
    private var producers: [String: ONNXNode] = [:]
    private var consumers: [String: [Int]] = [:]

    init(graph: ONNXGraph) {
        self.graph = graph
        for tensor in graph.initializers { tensors[tensor.name] = SourceTensor(name: tensor.name, data: tensor.data) }
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producers[output] = node }
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
            // A Constant node's value is a weight like an initializer (some exporters emit them).
            if node.opType == "Constant", let output = node.outputs.first, case .tensor(let data)? = node.attributes["value"] {
                tensors[output] = SourceTensor(name: output, data: data)
            }
        }
    }

    /// Every float tensor the graph holds, in file order, for reporting what was left unused.
    var floatTensors: [SourceTensor] {
        graph.initializers.filter { [.float32, .float16, .float64].contains($0.data.dtype) }
            .map { SourceTensor(name: $0.name, data: $0.data) }
    }

    func layers() -> [SourceLayer] {
        var claimed = Set<Int>()
        var result: [SourceLayer] = []
        for (index, node) in graph.nodes.enumerated() where !claimed.contains(index) {
            var names = [node.name]
            var slots: [String: SourceTensor] = [:]
            func take(_ slot: String, _ input: Int, of node: ONNXNode) {
                guard input < node.inputs.count, let tensor = weight(node.inputs[input]) else { return }
                slots[slot] = tensor
                names.append(tensor.name)
            }
            var layer: SourceLayer?
            switch node.opType {
            case "Conv":
                take("weight", 1, of: node)
                take("bias", 2, of: node)
                if slots["weight"] != nil, attribute(node, "group") ?? 1 == 1 {
                    layer = SourceLayer(kind: .conv, node: node.name, tensors: slots, nameParts: [])
                }
            case "Gemm":
                take("weight", 1, of: node)
                take("bias", 2, of: node)
                let plain = attribute(node, "transA") ?? 0 == 0 && floatAttribute(node, "alpha") ?? 1 == 1 && floatAttribute(node, "beta") ?? 1 == 1
                if plain, slots["weight"]?.data.shape.count == 2 {
                    layer = SourceLayer(kind: .dense, node: node.name, tensors: slots, nameParts: [])
                    layer?.transposedWeight = attribute(node, "transB") ?? 0 == 1
                    layer?.flattenOrder = flattenOrder(feeding: node.inputs[0])
                }
            case "MatMul":
                take("weight", 1, of: node)
                if slots["weight"]?.data.shape.count == 2 {
                    if let (addIndex, add, bias) = followingConstantOperand(of: node, op: "Add") {
                        claimed.insert(addIndex)
                        slots["bias"] = bias
                        names += [add.name, bias.name]
                    }
                    layer = SourceLayer(kind: .dense, node: node.name, tensors: slots, nameParts: [])
                    layer?.flattenOrder = flattenOrder(feeding: node.inputs[0])
                }
            case "BatchNormalization":
                for (slot, input) in [("scale", 1), ("shift", 2), ("mean", 3), ("variance", 4)] { take(slot, input, of: node) }
                if slots.count == 4 {
                    layer = SourceLayer(kind: .batchNorm, node: node.name, tensors: slots, nameParts: [])
                    layer?.epsilon = floatAttribute(node, "epsilon") ?? 1e-5
                }
            case "LayerNormalization":
                take("scale", 1, of: node)
                take("shift", 2, of: node)
                if slots["scale"] != nil { layer = SourceLayer(kind: .layerNorm, node: node.name, tensors: slots, nameParts: []) }
            case "Mul":
                // Exactly one operand is a weight: the data flows through the other.
                let weighted = node.inputs.indices.filter { weight(node.inputs[$0]) != nil }
                if node.inputs.count == 2, weighted.count == 1, let operand = weighted.first,
                   let (addIndex, add, shift) = followingConstantOperand(of: node, op: "Add") {
                    take("scale", operand, of: node)
                    claimed.insert(addIndex)
                    slots["shift"] = shift
                    names += [add.name, shift.name]
                    layer = SourceLayer(kind: .scaleShift, node: node.name, tensors: slots, nameParts: [])
                }
            default:
                break
            }
            if var layer {
                // Whole names too, so a graph imported from this very file matches itself.
                layer.nameParts = Set(names.flatMap(Self.nameParts) + names)
                result.append(layer)
            }
        }
        return result
    }

    /// `model/block1_conv1/Conv2D/ReadVariableOp:0` -> model, block1_conv1, Conv2D, ReadVariableOp.
    static func nameParts(_ name: String) -> [String] {
        name.split(separator: "/").map { part in
            let text = String(part)
            if let colon = text.lastIndex(of: ":"), text[text.index(after: colon)...].allSatisfy(\.isNumber) {
                return String(text[..<colon])
            }
            return text
        }
    }

    /// The float tensor behind a node input: an initializer or Constant, possibly through Identity.
    private func weight(_ name: String) -> SourceTensor? {
        if let tensor = tensors[name] {
            return [.float32, .float16, .float64].contains(tensor.data.dtype) ? tensor : nil
        }
        if let producer = producers[name], producer.opType == "Identity", let input = producer.inputs.first {
            return weight(input)
        }
        return nil
    }

    /// The only reader of `node`'s output, when it is an `op` whose other operand is a weight.
    private func followingConstantOperand(of node: ONNXNode, op: String) -> (Int, ONNXNode, SourceTensor)? {
        guard let output = node.outputs.first, let readers = consumers[output], readers.count == 1,
              let index = readers.first else { return nil }
        let next = graph.nodes[index]
        guard next.opType == op, next.inputs.count == 2 else { return nil }
        let other = next.inputs[0] == output ? next.inputs[1] : next.inputs[0]
        guard let tensor = weight(other) else { return nil }
        return (index, next, tensor)
    }

    /// Which order the features reaching a dense layer were flattened in, if a flatten feeds it:
    /// tf2onnx transposes back to NHWC before Keras's Flatten; PyTorch flattens NCHW directly.
    private func flattenOrder(feeding value: String) -> FlattenOrder? {
        let passThrough: Set<String> = ["Relu", "Identity", "Dropout", "Cast"]
        var current = value
        var flattenInput: String?
        while let producer = producers[current] {
            if producer.opType == "Flatten" || producer.opType == "Reshape" { flattenInput = producer.inputs.first; break }
            guard passThrough.contains(producer.opType), let input = producer.inputs.first else { return nil }
            current = input
        }
        guard var current = flattenInput else { return nil }
        let layoutKeeping: Set<String> = passThrough.union(["LeakyRelu", "Sigmoid", "Tanh", "Clip", "Mul", "Add"])
        while let producer = producers[current] {
            switch producer.opType {
            case "Transpose":
                guard case .ints(let perm)? = producer.attributes["perm"] else { return nil }
                return perm == [0, 2, 3, 1] ? .nhwc : (perm == [0, 3, 1, 2] ? .nchw : nil)
            case "Conv", "MaxPool", "AveragePool", "BatchNormalization", "GlobalAveragePool", "GlobalMaxPool":
                return .nchw
            default:
                guard layoutKeeping.contains(producer.opType),
                      let input = producer.inputs.first(where: { !$0.isEmpty && weight($0) == nil }) else { return nil }
                current = input
            }
        }
        return nil
    }

    private func attribute(_ node: ONNXNode, _ name: String) -> Int? {
        if case .int(let value)? = node.attributes[name] { return value }
        return nil
    }

    private func floatAttribute(_ node: ONNXNode, _ name: String) -> Float? {
        if case .float(let value)? = node.attributes[name] { return value }
        return nil
    }
}
