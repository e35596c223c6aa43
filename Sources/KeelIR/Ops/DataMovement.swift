extension OpRegistry {
    /// Ops that rearrange or relabel elements without arithmetic.
    static var dataMovementSchemas: [OpSchema] {
        [
            OpSchema(kind: .reshape, category: .view, aliasing: .view, inputs: [.init("x")],
                     attributes: [.init("shape", default: nil, "full target; 0 copies, -1 is inferred"),
                                  .init("allowzero", default: .int(0), "1: a 0 in shape is an extent of 0 (ONNX allowzero)")]) { context in
                let input = try context.type(0)
                return [TensorType(input.dtype, try reshapedShape(context, input, target: try context.attributes.ints("shape")))]
            },
            OpSchema(kind: .flatten, category: .view, aliasing: .view, inputs: [.init("x")], attributes: [.init("axis", default: .int(1))]) { context in
                let input = try context.type(0)
                let rank = input.shape.rank
                let value = try context.attributes.int("axis")
                let axis = value < 0 ? value + rank : value
                guard axis >= 0, axis <= rank else {
                    throw context.error("axis \(value) is out of range for \(context.quote(0, input)) of rank \(rank)")
                }
                guard let outer = DimMath.product(input.shape.dims[..<axis]), let inner = DimMath.product(input.shape.dims[axis...]) else {
                    throw context.error("cannot flatten \(context.quote(0, input)) at axis \(axis): a product of symbolic dimensions has no extent")
                }
                return [TensorType(input.dtype, Shape([outer, inner]))]
            },
            OpSchema(kind: .transpose, category: .dataMovement, reference: { context in
                let input = try context.input(0)
                let perm = try context.attributes.optionalInts("perm") ?? Array((0..<input.shape.count).reversed())
                return try ReferenceLoops.transpose(input, perm: perm)
            }, inputs: [.init("x")], attributes: [.init("perm", default: nil, "reversed axes when absent")]) { context in
                let input = try context.type(0)
                let rank = input.shape.rank
                let perm = try context.attributes.optionalInts("perm") ?? Array((0..<rank).reversed())
                guard perm.sorted() == Array(0..<rank) else {
                    throw context.error("perm \(AttributeValue.ints(perm)) is not a permutation of the \(rank) axes of \(context.quote(0, input))")
                }
                return [TensorType(input.dtype, Shape(perm.map { input.shape[$0] }))]
            },
            OpSchema(kind: .concat, category: .dataMovement, reference: { context in
                guard let axis = Shape(known: context.outputShape).normalizedAxis(try context.attributes.int("axis")) else {
                    throw context.attributes.error("axis is out of range")
                }
                return ReferenceLoops.concat(context.presentInputs, axis: axis)
            }, inputs: [.init("x", variadic: true)], attributes: [.init("axis", default: .int(-1))]) { context in
                [try concatenatedType(context)]
            },
            OpSchema(kind: .cast, category: .view, aliasing: .view, isLayoutAgnostic: true, inputs: [.init("x")], attributes: [.init("to", default: nil, "dtype spelling, e.g. \"f32\"")]) { context in
                let input = try context.type(0)
                let spelling = try context.attributes.string("to")
                guard let dtype = DType(spelling: spelling) else {
                    throw context.error("attribute 'to' is \"\(spelling)\", not a dtype (f32, f16, f64, i32, i64, bool)")
                }
                return [TensorType(dtype, input.shape)]
            },
            OpSchema(kind: .identity, category: .view, aliasing: .view, isLayoutAgnostic: true, inputs: [.init("x")], attributes: [], inferTypes: unaryType),
            OpSchema(kind: .dropout, category: .view, aliasing: .view, isLayoutAgnostic: true, inputs: [.init("x")],
                     attributes: [.init("rate", default: .float(0.5), "ignored at inference")], inferTypes: unaryType),
        ] + indexingSchemas
    }

    /// Reshape target resolution: `0` copies the input's dimension at that position (unless
    /// `allowzero` makes it a zero extent), `-1` takes what is left. Symbols cancel by name, so
    /// [N,7,7,768] -> [0,-1,768] gives [N,49,768].
    public static func reshapedShape(_ context: OpSchema.Context, _ input: TensorType, target: [Int]) throws -> Shape {
        var dims: [Dim?] = []
        var inferred: Int?
        let targetText = AttributeValue.ints(target).description
        let allowZero = try context.attributes.schema.attributeSpec("allowzero") != nil && context.attributes.int("allowzero") != 0
        for (position, value) in target.enumerated() {
            switch value {
            case 0 where allowZero:
                dims.append(.known(0))
            case 0:
                guard position < input.shape.rank else {
                    throw context.error("shape \(targetText) copies dimension \(position) with 0 but \(context.quote(0, input)) has rank \(input.shape.rank)")
                }
                dims.append(input.shape[position])
            case -1:
                guard inferred == nil else { throw context.error("shape \(targetText) has more than one -1") }
                inferred = position
                dims.append(nil)
            case ..<0:
                throw context.error("shape \(targetText) has a negative extent \(value)")
            default:
                dims.append(.known(value))
            }
        }
        let counted = "\(formatCount(input.shape.knownProduct)) elements" + (input.shape.symbols.isEmpty ? "" : " per " + input.shape.symbols.joined(separator: "·"))
        guard let inputCount = DimProduct(input.shape.dims), let outputCount = DimProduct(dims.compactMap { $0 }) else {
            throw context.error("shape \(targetText) or \(context.quote(0, input)) has too many elements")
        }
        if let inferred {
            // The -1 takes what is left: a known extent, or a multiple of the batch ([N,49,768] -> [-1,768] is [49·N,768]).
            guard outputCount.coefficient > 0, let rest = inputCount.dividing(by: outputCount) else {
                throw context.error("cannot infer -1 in shape \(targetText) from \(context.quote(0, input)): \(counted) do not divide into \(formatCount(outputCount.coefficient))")
            }
            dims[inferred] = rest
        } else {
            let extra = outputCount.symbols.first { symbol in
                outputCount.symbols.filter { $0 == symbol }.count > inputCount.symbols.filter { $0 == symbol }.count
            }
            if let extra {
                throw context.error("shape \(targetText) introduces symbolic dimension \(extra) that \(context.quote(0, input)) does not have")
            }
            if let dropped = inputCount.symbols.first(where: { !outputCount.symbols.contains($0) }) {
                throw context.error("shape \(targetText) drops the symbolic dimension \(dropped) of \(context.quote(0, input)); use 0 or -1 for it")
            }
            guard inputCount == outputCount else {
                throw context.error("shape \(targetText) has \(formatCount(outputCount.coefficient)) elements but \(context.quote(0, input)) has \(formatCount(inputCount.coefficient))")
            }
        }
        return Shape(dims.compactMap { $0 })
    }

    /// Concatenation: equal ranks and dtypes, every other axis equal (symbols by name), known
    /// extents on the joined axis.
    static func concatenatedType(_ context: OpSchema.Context) throws -> TensorType {
        let inputs = try context.presentTypes()
        guard let first = inputs.first else { throw context.error("needs at least one input") }
        let rank = first.type.shape.rank
        let axisValue = try context.attributes.int("axis")
        let axis = try context.axis(axisValue, rank: rank, of: 0, first.type)
        var total = 0
        for (name, type) in inputs {
            guard type.shape.rank == rank, type.dtype == first.type.dtype else {
                throw context.error("cannot join input '\(first.name)' \(first.type) with input '\(name)' \(type)")
            }
            for index in 0..<rank where index != axis && type.shape[index] != first.type.shape[index] {
                throw context.error("inputs differ on axis \(index), not the concatenation axis \(axis): input '\(first.name)' \(first.type.shape) and input '\(name)' \(type.shape)")
            }
            guard let extent = type.shape[axis].value else {
                throw context.error("cannot concatenate symbolic dimension \(type.shape[axis]) of input '\(name)' \(type.shape) on axis \(axis)")
            }
            total += extent
        }
        var shape = first.type.shape
        shape[axis] = .known(total)
        return TensorType(first.type.dtype, shape)
    }
}
