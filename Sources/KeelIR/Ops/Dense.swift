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
            OpSchema(kind: .matmul, category: .matrixProduct, inputs: [.init("a"), .init("b")], attributes: []) { context in
                [try matmulType(context)]
            },
        ]
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
