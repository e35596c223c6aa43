extension OpRegistry {
    /// softmax / log_softmax along one axis, and the mean, sum, sum-of-squares, product, max and min reductions.
    static var softmaxAndReductionSchemas: [OpSchema] {
        let along: @Sendable (OpSchema.Context) throws -> [TensorType] = { context in
            let input = try context.type(0)
            _ = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
            return [input]
        }
        let reduction: @Sendable (OpSchema.Context) throws -> [TensorType] = { context in
            let input = try context.type(0)
            let axes = try reducedAxes(context, input)
            let keepDims = try context.attributes.bool("keepdims")
            var dims: [Dim] = []
            for (axis, dim) in input.shape.dims.enumerated() {
                if !axes.contains(axis) { dims.append(dim) } else if keepDims { dims.append(1) }
            }
            return [TensorType(input.dtype, Shape(dims))]
        }
        let reductionAttributes: [OpSchema.AttributeSpec] = [
            .init("axes", default: nil, "all axes when absent"),
            .init("keepdims", default: .bool(true)),
        ]
        return [
            OpSchema(kind: .softmax, category: .reduction, epilogueActivation: { _ in .softmax }, inputs: [.init("x")], attributes: [.init("axis", default: .int(-1))], inferTypes: along),
            OpSchema(kind: .logSoftmax, category: .reduction, inputs: [.init("x")], attributes: [.init("axis", default: .int(-1))], inferTypes: along),
            OpSchema(kind: .reduceMean, category: .reduction, reference: reductionReference(0, { $0 + $1 }, average: true),
                     inputs: [.init("x")], attributes: reductionAttributes, inferTypes: reduction),
            OpSchema(kind: .reduceSum, category: .reduction, reference: reductionReference(0, { $0 + $1 }),
                     inputs: [.init("x")], attributes: reductionAttributes, inferTypes: reduction),
            OpSchema(kind: .reduceSumSquare, category: .reduction, reference: reductionReference(0, { $0 + $1 * $1 }),
                     inputs: [.init("x")], attributes: reductionAttributes, inferTypes: reduction),
            OpSchema(kind: .reduceProd, category: .reduction, reference: reductionReference(1, { $0 * $1 }),
                     inputs: [.init("x")], attributes: reductionAttributes, inferTypes: reduction),
            // NaN wins, as IEEE 754-2019 maximum and minimum (the kernel's rule).
            OpSchema(kind: .reduceMax, category: .reduction,
                     reference: reductionReference(-.infinity, { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }),
                     inputs: [.init("x")], attributes: reductionAttributes, inferTypes: reduction),
            OpSchema(kind: .reduceMin, category: .reduction,
                     reference: reductionReference(.infinity, { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }),
                     inputs: [.init("x")], attributes: reductionAttributes, inferTypes: reduction),
        ]
    }

    /// A reduction in Double: `combine(partial, element)` over the reduced axes from `initial`,
    /// divided by their element count when `average`. Constant folding evaluates weight
    /// statistics with it (NF-Nets' standardised filters).
    private static func reductionReference(_ initial: Double, _ combine: @escaping @Sendable (Double, Double) -> Double,
                                           average: Bool = false) -> ReferenceEvaluation {
        { context in
            let input = try context.input(0)
            let rank = input.shape.count
            let axes = Set((try context.attributes.optionalInts("axes") ?? Array(0..<rank)).map { $0 < 0 ? $0 + rank : $0 })
            // Each input element's output position: C-order strides over the kept axes.
            var strides = [Int](repeating: 0, count: rank)
            var stride = 1
            for axis in (0..<rank).reversed() where !axes.contains(axis) {
                strides[axis] = stride
                stride *= input.shape[axis]
            }
            var result = [Double](repeating: initial, count: stride)
            var position = 0
            ReferenceLoops.forEachIndex(input.shape) { index in
                var offset = 0
                for axis in 0..<rank { offset += index[axis] * strides[axis] }
                result[offset] = combine(result[offset], input.values[position])
                position += 1
            }
            let reducedCount = axes.reduce(1) { $0 * input.shape[$1] }
            return average ? result.map { $0 / Double(reducedCount) } : result
        }
    }

    /// The normalised, de-duplicated `axes` of a reduction (every axis when absent).
    public static func reducedAxes(_ context: OpSchema.Context, _ input: TensorType) throws -> Set<Int> {
        guard let axes = try context.attributes.optionalInts("axes") else { return Set(0..<input.shape.rank) }
        var result = Set<Int>()
        for axis in axes {
            let resolved = try context.axis(axis, rank: input.shape.rank, of: 0, input, attribute: "axes entry")
            guard result.insert(resolved).inserted else {
                throw context.error("axes \(AttributeValue.ints(axes)) name axis \(resolved) twice")
            }
        }
        return result
    }
}
