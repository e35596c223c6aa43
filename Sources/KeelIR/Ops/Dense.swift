/// Dense's weight matrix resolved from its kernel shape: Keras stores [in,out], ONNX Gemm with
/// transB stores [out,in].
public struct DenseGeometry: Hashable, Sendable {
    public var inputFeatures: Int
    public var outputFeatures: Int
    /// True for Keras's [in,out] kernel, false for [out,in].
    public var kernelIsInOut: Bool

    /// Resolves a dense node against its input and kernel shapes; checks the feature counts.
    public static func resolve(_ node: Node, input: Shape, kernel: Shape) throws -> DenseGeometry {
        try resolve(OpSchema.Context(node: node, inputTypes: [TensorType(.float32, input), TensorType(.float32, kernel)]))
    }

    static func resolve(_ context: OpSchema.Context) throws -> DenseGeometry {
        let input = try context.type(0)
        let kernel = try context.type(1)
        let inOut = try context.attributes.choice("weight_layout", ["in_out", "out_in"]) == "in_out"
        guard kernel.shape.rank == 2, let extents = kernel.shape.knownExtents else {
            throw context.error("kernel '\(context.inputName(1))' must be a known 2-D \(inOut ? "[in,out]" : "[out,in]") matrix but is \(kernel.shape)")
        }
        let (inputFeatures, outputFeatures) = inOut ? (extents[0], extents[1]) : (extents[1], extents[0])
        guard input.shape.rank >= 1, input.shape.dims.last == .known(inputFeatures) else {
            throw context.error("expects \(formatCount(inputFeatures)) input features on the last axis but its input '\(context.inputName(0))' is \(input.shape)")
        }
        if let bias = context.optionalType(2), bias.shape != Shape(known: [outputFeatures]) {
            throw context.error("bias '\(context.inputName(2))' is \(bias.shape) but the kernel has \(formatCount(outputFeatures)) output features")
        }
        return DenseGeometry(inputFeatures: inputFeatures, outputFeatures: outputFeatures, kernelIsInOut: inOut)
    }
}

extension OpRegistry {
    /// dense (Keras Dense on the last axis) and matmul (ONNX MatMul broadcasting).
    static var denseSchemas: [OpSchema] {
        [
            OpSchema(
                kind: .dense, category: .matrixProduct,
                fusedActivations: FusedActivation.Kind.allCases,
                reference: denseReference,
                inputs: [.init("x"), .init("kernel", isParameter: true), .init("bias", optional: true, isParameter: true),
                         .init("residual", optional: true)],
                attributes: [.init("weight_layout", default: .string("in_out"), "\"in_out\" (Keras) or \"out_in\" (Gemm transB)")]
                    + OpSchema.activationAttributes
            ) { context in
                _ = try context.node.fusedActivation
                let geometry = try DenseGeometry.resolve(context)
                let input = try context.type(0)
                var shape = input.shape
                shape[shape.rank - 1] = .known(geometry.outputFeatures)
                try checkResidual(context, index: 3, shape: shape)
                return [TensorType(input.dtype, shape)]
            },
            OpSchema(kind: .matmul, category: .matrixProduct, reference: { context in
                try ReferenceLoops.matmul(try context.input(0), try context.input(1))
            }, inputs: [.init("a"), .init("b")], attributes: []) { context in
                [try matmulType(context)]
            },
        ]
    }

    /// x·W (+ bias) (+ residual) over the last axis, for constant folding; a fused activation is
    /// not covered (folding runs before epilogue fusion, so a constant product has none yet).
    @Sendable static func denseReference(_ context: ReferenceContext) throws -> [Double] {
        guard try FusedActivation(context.attributes) == .none else { throw ReferenceError.notCovered }
        let (x, kernel) = (try context.input(0), try context.input(1))
        let bias = context.inputs.count > 2 ? context.inputs[2] : nil
        let residual = context.inputs.count > 3 ? context.inputs[3] : nil
        let inOut = try context.attributes.choice("weight_layout", ["in_out", "out_in"]) == "in_out"
        guard kernel.shape.count == 2, let features = x.shape.last else { throw ReferenceError.shapeMismatch }
        let (inputs, outputs) = inOut ? (kernel.shape[0], kernel.shape[1]) : (kernel.shape[1], kernel.shape[0])
        guard features == inputs, bias.map({ $0.values.count == outputs }) ?? true else { throw ReferenceError.shapeMismatch }
        let rows = inputs == 0 ? 0 : x.values.count / inputs
        guard rows * inputs * outputs <= ReferenceLoops.maximumFoldedMultiplies else { throw ReferenceError.tooLarge }
        guard residual.map({ $0.values.count == rows * outputs }) ?? true else { throw ReferenceError.shapeMismatch }
        var result = [Double](repeating: 0, count: rows * outputs)
        for row in 0..<rows {
            for output in 0..<outputs {
                var total = bias?.values[output] ?? 0
                for input in 0..<inputs {
                    total += x.values[row * inputs + input] * kernel.values[inOut ? input * outputs + output : output * inputs + input]
                }
                result[row * outputs + output] = total + (residual?.values[row * outputs + output] ?? 0)
            }
        }
        return result
    }

    /// ONNX MatMul: rank-1 operands are promoted and the promoted axis removed; leading axes broadcast.
    static func matmulType(_ context: OpSchema.Context) throws -> TensorType {
        let left = try context.type(0)
        let right = try context.type(1)
        guard left.shape.rank >= 1, right.shape.rank >= 1 else {
            throw context.error("needs operands of rank 1 or more but has \(left.shape) and \(right.shape)")
        }
        let a = left.shape.rank == 1 ? Shape([1] + left.shape.dims) : left.shape
        let b = right.shape.rank == 1 ? Shape(right.shape.dims + [1]) : right.shape
        let inner = a.dims[a.rank - 1]
        guard inner == b.dims[b.rank - 2] else {
            throw context.error("cannot multiply input '\(context.inputName(0))' \(left.shape) by input '\(context.inputName(1))' \(right.shape): inner dimensions \(inner) and \(b.dims[b.rank - 2]) differ")
        }
        guard let batch = DimMath.broadcast(Shape(Array(a.dims.dropLast(2))), Shape(Array(b.dims.dropLast(2)))) else {
            throw context.error("cannot broadcast the leading axes of input '\(context.inputName(0))' \(left.shape) and input '\(context.inputName(1))' \(right.shape)")
        }
        var dims = batch.dims
        if left.shape.rank > 1 { dims.append(a.dims[a.rank - 2]) }
        if right.shape.rank > 1 { dims.append(b.dims[b.rank - 1]) }
        return TensorType(left.dtype, Shape(dims))
    }
}
