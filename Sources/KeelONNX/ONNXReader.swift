import CONNX
import KeelIR

/// Reads an ONNX model: maps the file, takes the large initializer weights out of the message
/// (`WireFormatScan`), lets protobuf-c parse the rest, and converts the C tree into `ONNXModel`
/// values. Initializers view their weights in the file mapping, which lives as long as one of
/// them does; the parsed tree stays alive only while tensors still view its bytes.
public func loadONNXModel(path: String, confinement: PathConfinement = PathConfinement()) throws -> ONNXModel {
    try loadONNXModel(path: path, minimumMappedWeight: WireFormatScan.defaultMinimumSpan, confinement: confinement)
}

/// `minimumMappedWeight`: the smallest raw_data left in the file; tests lower it.
func loadONNXModel(path: String, minimumMappedWeight: Int,
                   confinement: PathConfinement = PathConfinement()) throws -> ONNXModel {
    let file = try mapONNXFile(path)
    // When the scan cannot read the file, protobuf-c parses it as it stands and has the last
    // word on it, so damaged files fail exactly as they always did.
    let compact = try? WireFormatScan.compactModel(file.bytes, minimumSpan: minimumMappedWeight)
    let message: UnsafeMutablePointer<Onnx__ModelProto>?
    if let compact {
        message = compact.bytes.withUnsafeBufferPointer {
            onnx__model_proto__unpack(ParseAllocator.shared, $0.count, $0.baseAddress)
        }
    } else {
        message = onnx__model_proto__unpack(ParseAllocator.shared, file.bytes.count,
                                            file.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
    }
    guard let message else { throw ONNXError.malformed(path: path, what: "ONNX model") }
    let owner = ProtoOwner(message) { onnx__model_proto__free_unpacked($0, ParseAllocator.shared) }
    let weights = compact.flatMap { $0.spans.isEmpty ? nil : MappedWeights(file: file, spans: $0.spans) }
    return try ModelConverter(path: path, owner: owner, weights: weights, confinement: confinement).model()
}

/// Turns the parsed C tree into Swift values, checking what the importer relies on.
private struct ModelConverter {
    let path: String
    let owner: ProtoOwner<Onnx__ModelProto>
    let tensorContext: TensorReadContext
    let weights: MappedWeights?

    init(path: String, owner: ProtoOwner<Onnx__ModelProto>, weights: MappedWeights?, confinement: PathConfinement) {
        self.path = path
        self.owner = owner
        self.weights = weights
        self.tensorContext = TensorReadContext(path: path, confinement: confinement)
    }

    func model() throws -> ONNXModel {
        let model = owner.message.pointee
        guard model.has_ir_version != 0 else { throw ONNXError.notAModel(path: path, reason: "no IR version") }
        guard let graph = model.graph else { throw ONNXError.notAModel(path: path, reason: "no graph") }
        var opsets: [String: Int] = [:]
        for entry in repeated(model.opset_import, model.n_opset_import) {
            guard let entry else { continue }
            let domain = swiftString(entry.pointee.domain)
            opsets[domain == "ai.onnx" ? "" : domain] = Int(clamping: entry.pointee.version)
        }
        var trainable: Set<String>? = nil
        for info in repeated(model.training_info, model.n_training_info) {
            guard let info else { continue }
            for binding in repeated(info.pointee.update_binding, info.pointee.n_update_binding) {
                guard let binding else { continue }
                trainable = (trainable ?? []).union([swiftString(binding.pointee.key)])
            }
        }
        return ONNXModel(path: path, irVersion: Int(clamping: model.ir_version),
                         producerName: swiftString(model.producer_name),
                         producerVersion: swiftString(model.producer_version),
                         opsetImports: opsets, graph: try self.graph(graph), trainableInitializers: trainable)
    }

    private func graph(_ pointer: UnsafeMutablePointer<Onnx__GraphProto>) throws -> ONNXGraph {
        let graph = pointer.pointee
        return ONNXGraph(
            name: swiftString(graph.name),
            nodes: try repeated(graph.node, graph.n_node).compactMap { try $0.map(node) },
            initializers: try repeated(graph.initializer, graph.n_initializer).compactMap { tensor in
                try tensor.map { ONNXTensor(name: swiftString($0.pointee.name),
                                            data: try readTensor($0, owner: owner, context: tensorContext,
                                                                  weights: weights)) }
            },
            inputs: repeated(graph.input, graph.n_input).compactMap { $0.map(valueInfo) },
            outputs: repeated(graph.output, graph.n_output).compactMap { $0.map(valueInfo) },
            valueInfo: repeated(graph.value_info, graph.n_value_info).compactMap { $0.map(valueInfo) })
    }

    private func node(_ pointer: UnsafeMutablePointer<Onnx__NodeProto>) throws -> ONNXNode {
        let node = pointer.pointee
        var attributes: [String: ONNXAttribute] = [:]
        for attribute in repeated(node.attribute, node.n_attribute) {
            guard let attribute else { continue }
            attributes[swiftString(attribute.pointee.name)] = try self.attribute(attribute)
        }
        return ONNXNode(name: swiftString(node.name), opType: swiftString(node.op_type),
                        domain: swiftString(node.domain),
                        inputs: repeated(node.input, node.n_input).map(swiftString),
                        outputs: repeated(node.output, node.n_output).map(swiftString),
                        attributes: attributes)
    }

    /// Uses the `type` discriminator; files older than IR version 2 lack it, so then the
    /// present field decides.
    private func attribute(_ pointer: UnsafeMutablePointer<Onnx__AttributeProto>) throws -> ONNXAttribute {
        let attribute = pointer.pointee
        var type = attribute.has_type != 0 ? Int(attribute.type.rawValue) : 0
        if type == 0 {
            if attribute.has_f != 0 { type = 1 }
            else if attribute.has_i != 0 { type = 2 }
            else if attribute.has_s != 0 { type = 3 }
            else if attribute.t != nil { type = 4 }
            else if attribute.n_floats > 0 { type = 6 }
            else if attribute.n_ints > 0 { type = 7 }
            else if attribute.n_strings > 0 { type = 8 }
        }
        switch type {
        case 1: return .float(attribute.f)
        case 2: return .int(Int(clamping: attribute.i))
        case 3: return .string(text(attribute.s))
        case 4:
            guard let tensor = attribute.t else { return .unsupported(type) }
            return .tensor(try readTensor(tensor, owner: owner, context: tensorContext))
        case 6: return .floats(Array(repeated(attribute.floats, attribute.n_floats)))
        case 7: return .ints(repeated(attribute.ints, attribute.n_ints).map { Int(clamping: $0) })
        case 8: return .strings(repeated(attribute.strings, attribute.n_strings).map(text))
        default: return .unsupported(type)
        }
    }

    private func valueInfo(_ pointer: UnsafeMutablePointer<Onnx__ValueInfoProto>) -> ONNXValueInfo {
        let info = pointer.pointee
        var result = ONNXValueInfo(name: swiftString(info.name), elementType: 0, dims: nil)
        guard let type = info.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensor = type.pointee.tensor_type else { return result }
        if tensor.pointee.has_elem_type != 0 { result.elementType = Int(tensor.pointee.elem_type) }
        if let shape = tensor.pointee.shape {
            result.dims = repeated(shape.pointee.dim, shape.pointee.n_dim).map { dim -> ONNXDim in
                guard let dim else { return .unknown }
                switch dim.pointee.value_case {
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                    // Negative or absurd extents say nothing useful; treat them as unnamed.
                    let extent = dim.pointee.dim_value
                    return extent >= 0 && extent <= Int64(Int32.max) ? .value(Int(extent)) : .unknown
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                    let name = swiftString(dim.pointee.dim_param)
                    return name.isEmpty ? .unknown : .param(name)
                default:
                    return .unknown
                }
            }
        }
        return result
    }

    private func text(_ data: ProtobufCBinaryData) -> String {
        guard let bytes = data.data, data.len > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: data.len), as: UTF8.self)
    }
}

/// Maps a model or tensor file, reporting failures as ONNX errors naming the file.
func mapONNXFile(_ path: String) throws -> MappedFile {
    do {
        return try MappedFile(path: path)
    } catch let error as FileError {
        throw ONNXError.unreadable(path: error.path, reason: error.reason)
    }
}
