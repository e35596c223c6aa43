/// The reference semantics of ops: plain loops in Double over C-order values, written once per
/// op on its schema (`OpSchema.reference`). Constant folding, import-time shape folding and the
/// kernel tests all evaluate ops through this one definition.
public struct ReferenceTensor: Equatable, Sendable {
    /// C-order values; integers and booleans exactly (up to 2^53), floats widened.
    public var values: [Double]
    public var shape: [Int]

    public init(values: [Double], shape: [Int]) {
        self.values = values
        self.shape = shape
    }

    public init(_ data: TensorData) {
        switch data.dtype {
        case .int64, .int32, .bool: values = data.int64s().map(Double.init)
        default: values = data.floats().map(Double.init)
        }
        shape = data.shape
    }
}

/// What an op's reference evaluation sees.
public struct ReferenceContext {
    public var attributes: AttributeReader
    public var inputs: [ReferenceTensor?]
    public var outputShape: [Int]

    /// Input `index`, which must be present.
    public func input(_ index: Int) throws -> ReferenceTensor {
        guard index < inputs.count, let input = inputs[index] else { throw attributes.error("has no value for input \(index)") }
        return input
    }

    var presentInputs: [ReferenceTensor] { inputs.compactMap { $0 } }

    /// NumPy broadcasting of every present input onto the output shape, combined element by element.
    public func broadcast(_ operation: ([Double]) -> Double) throws -> [Double] {
        let operands = presentInputs
        let count = outputShape.reduce(1, *)
        // Operands of the output's shape or single values need no index arithmetic (folding a
        // model's weights element-wise takes seconds through the general loop).
        if operands.allSatisfy({ $0.values.count == 1 || $0.shape == outputShape }) {
            var elements = [Double](repeating: 0, count: operands.count)
            return (0..<count).map { position in
                for operand in operands.indices {
                    let values = operands[operand].values
                    elements[operand] = values[values.count == 1 ? 0 : position]
                }
                return operation(elements)
            }
        }
        let strides = try operands.map { try ReferenceLoops.broadcastStrides(of: $0.shape, onto: outputShape) }
        var result: [Double] = []
        result.reserveCapacity(count)
        var elements = [Double](repeating: 0, count: operands.count)
        // An odometer over the output's index, each operand's offset moved along with it.
        var index = [Int](repeating: 0, count: outputShape.count)
        var offsets = [Int](repeating: 0, count: operands.count)
        for _ in 0..<count {
            for operand in operands.indices { elements[operand] = operands[operand].values[offsets[operand]] }
            result.append(operation(elements))
            var axis = outputShape.count - 1
            while axis >= 0 {
                index[axis] += 1
                for operand in operands.indices { offsets[operand] += strides[operand][axis] }
                if index[axis] < outputShape[axis] { break }
                for operand in operands.indices { offsets[operand] -= strides[operand][axis] * outputShape[axis] }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// Broadcasting of exactly two inputs.
    public func broadcast(_ operation: @escaping (Double, Double) -> Double) throws -> [Double] {
        guard presentInputs.count == 2 else { throw attributes.error("needs two inputs") }
        return try broadcast { operation($0[0], $0[1]) }
    }
}

/// An op's meaning as a function of its inputs' values: the output's C-order values.
public typealias ReferenceEvaluation = @Sendable (ReferenceContext) throws -> [Double]

/// The values of `node`'s single output given its inputs' values, or nil when its op has no
/// reference evaluation (the GEMM-bound layers) or the evaluation fails.
public func evaluateReference(_ node: Node, inputs: [ReferenceTensor?], outputShape: [Int]) -> [Double]? {
    let attributes = AttributeReader(node: node)
    guard let reference = attributes.schema.reference,
          let values = try? reference(ReferenceContext(attributes: attributes, inputs: inputs, outputShape: outputShape)),
          values.count == outputShape.reduce(1, *) else { return nil }
    return values
}

extension TensorData {
    /// Stores evaluated values as `dtype`: integers truncate toward zero (as ONNX Cast does),
    /// booleans are whether the value is non-zero.
    public init(referenceValues values: [Double], dtype: DType, shape: [Int]) {
        switch dtype {
        case .int64: self.init(int64s: values.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }, shape: shape)
        case .int32: self.init(dtype: .int32, shape: shape, storage: TensorStorage(copying: values.map { Int32(exactly: $0.rounded(.towardZero)) ?? 0 }))
        case .float64: self.init(dtype: .float64, shape: shape, storage: TensorStorage(copying: values))
        case .bool: self.init(dtype: .bool, shape: shape, storage: TensorStorage(copying: values.map { $0 != 0 ? UInt8(1) : 0 }))
        case .float32, .float16: self.init(floats: values.map { Float($0) }, shape: shape)
        }
    }
}
