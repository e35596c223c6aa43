extension OpRegistry {
    /// pad, slice, gather, squeeze and unsqueeze: data movement that indexes axes.
    static var indexingSchemas: [OpSchema] {
        [
            OpSchema(kind: .pad, category: .dataMovement, reference: { context in
                let input = try context.input(0)
                let pads = try context.attributes.ints("pads")
                guard pads.count >= input.shape.count else { throw context.attributes.error("needs pads for every axis") }
                let fill = Double(try context.attributes.float("value"))
                let inputStrides = ReferenceLoops.strides(input.shape)
                var result: [Double] = []
                ReferenceLoops.forEachIndex(context.outputShape) { index in
                    var offset = 0
                    for axis in index.indices {
                        let position = index[axis] - pads[axis]
                        guard position >= 0, position < input.shape[axis] else { offset = -1; break }
                        offset += position * inputStrides[axis]
                    }
                    result.append(offset < 0 ? fill : input.values[offset])
                }
                return result
            }, inputs: [.init("x")],
                     attributes: [.init("pads", default: nil, "[begin per axis..., end per axis...]"),
                                  .init("value", default: .float(0))]) { context in
                let input = try context.type(0)
                let rank = input.shape.rank
                let pads = try context.attributes.ints("pads")
                guard pads.count == 2 * rank else {
                    throw context.error("pads \(AttributeValue.ints(pads)) must have \(2 * rank) entries for \(context.quote(0, input))")
                }
                _ = try context.attributes.float("value")
                var shape = input.shape
                for axis in 0..<rank {
                    let (added, overflow) = pads[axis].addingReportingOverflow(pads[axis + rank])
                    if added == 0 && !overflow { continue }
                    guard !overflow, let extent = input.shape[axis].value, extent.addingReportingOverflow(added).partialValue >= 0,
                          !extent.addingReportingOverflow(added).overflow else {
                        throw context.error("pads \(AttributeValue.ints(pads)) cannot pad axis \(axis) of \(context.quote(0, input))")
                    }
                    shape[axis] = .known(extent + added)
                }
                return [TensorType(input.dtype, shape)]
            },
            OpSchema(kind: .slice, category: .dataMovement, reference: { context in
                let input = try context.input(0)
                let reader = context.attributes
                let starts = try reader.ints("starts")
                let axes = try reader.optionalInts("axes") ?? Array(0..<starts.count)
                let steps = try reader.optionalInts("steps") ?? Array(repeating: 1, count: starts.count)
                var first = [Int](repeating: 0, count: input.shape.count), step = [Int](repeating: 1, count: input.shape.count)
                for (index, value) in axes.enumerated() {
                    guard let axis = Shape(known: input.shape).normalizedAxis(value), index < steps.count else {
                        throw reader.error("axis \(value) is out of range")
                    }
                    step[axis] = steps[index]
                    first[axis] = sliceStart(extent: input.shape[axis], start: starts[index], step: steps[index])
                }
                return try ReferenceLoops.strided(input, first: first, step: step, outputShape: context.outputShape)
            }, inputs: [.init("x")],
                     attributes: [.init("starts", default: nil), .init("ends", default: nil),
                                  .init("axes", default: nil, "all axes when absent"),
                                  .init("steps", default: nil, "1 per axis when absent")]) { context in
                [try slicedType(context)]
            },
            OpSchema(kind: .gather, category: .dataMovement, reference: { context in
                let (input, indices) = (try context.input(0), try context.input(1))
                guard let axis = Shape(known: input.shape).normalizedAxis(try context.attributes.int("axis")) else {
                    throw context.attributes.error("axis is out of range")
                }
                return try ReferenceLoops.gather(input, indices: indices.values, axis: axis)
            }, inputs: [.init("x"), .init("indices")], attributes: [.init("axis", default: .int(0))]) { context in
                let input = try context.type(0)
                let indices = try context.type(1)
                guard indices.dtype == .int64 || indices.dtype == .int32 else {
                    throw context.error("indices '\(context.inputName(1))' must be i32 or i64, not \(indices.dtype.rawValue)")
                }
                let axis = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
                if let extent = input.shape[axis].value, let values = context.constantValue(context.inputName(1)) {
                    if let bad = values.int64s().first(where: { $0 < -Int64(extent) || $0 >= Int64(extent) }) {
                        throw context.error("index \(bad) is out of range for axis \(axis) of \(context.quote(0, input))")
                    }
                }
                let dims = Array(input.shape.dims[..<axis]) + indices.shape.dims + Array(input.shape.dims[(axis + 1)...])
                return [TensorType(input.dtype, Shape(dims))]
            },
            OpSchema(kind: .scatterND, category: .dataMovement, reference: { context in
                let combine = try scatterCombination(try context.attributes.choice("reduction", scatterReductions))
                return try ReferenceLoops.scatterND(try context.input(0), indices: try context.input(1),
                                                    updates: try context.input(2), combine: combine)
            }, inputs: [.init("data"), .init("indices"), .init("updates")],
                     attributes: [.init("reduction", default: .string("none"), "\"none\", \"add\", \"mul\", \"max\" or \"min\"")]) { context in
                [try scatteredType(context)]
            },
            OpSchema(kind: .squeeze, category: .view, aliasing: .view, inputs: [.init("x")], attributes: [.init("axes", default: nil, "every axis of extent 1 when absent")]) { context in
                let input = try context.type(0)
                guard let axes = try context.attributes.optionalInts("axes") else {
                    return [TensorType(input.dtype, Shape(input.shape.dims.filter { $0 != .known(1) }))]
                }
                var removed = Set<Int>()
                for value in axes {
                    let axis = try context.axis(value, rank: input.shape.rank, of: 0, input, attribute: "axes entry")
                    guard input.shape[axis] == .known(1) else {
                        throw context.error("cannot squeeze axis \(axis) of \(context.quote(0, input)): its extent is \(input.shape[axis]), not 1")
                    }
                    removed.insert(axis)
                }
                let dims = input.shape.dims.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
                return [TensorType(input.dtype, Shape(dims))]
            },
            OpSchema(kind: .unsqueeze, category: .view, aliasing: .view, inputs: [.init("x")], attributes: [.init("axes", default: nil, "positions in the output")]) { context in
                let input = try context.type(0)
                let axes = try context.attributes.ints("axes")
                let rank = input.shape.rank + axes.count
                var inserted = Set<Int>()
                for value in axes {
                    let axis = value < 0 ? value + rank : value
                    guard axis >= 0, axis < rank, inserted.insert(axis).inserted else {
                        throw context.error("axes \(AttributeValue.ints(axes)) are invalid or repeated for \(context.quote(0, input)) becoming rank \(rank)")
                    }
                }
                var remaining = input.shape.dims.makeIterator()
                let dims: [Dim] = (0..<rank).map { inserted.contains($0) ? .known(1) : (remaining.next() ?? .known(1)) }
                return [TensorType(input.dtype, Shape(dims))]
            },
        ]
    }

    /// The values ONNX ScatterND's `reduction` names, and how each combines an element of data with its update.
    static let scatterReductions = ["none", "add", "mul", "max", "min"]

    static func scatterCombination(_ reduction: String) throws -> @Sendable (Double, Double) -> Double {
        switch reduction {
        case "add": return { $0 + $1 }
        case "mul": return { $0 * $1 }
        case "max": return { Swift.max($0, $1) }
        case "min": return { Swift.min($0, $1) }
        default: return { $1 }
        }
    }

    /// ONNX ScatterND: `indices` is a list of k-tuples (its last axis has k ≤ rank(data) entries),
    /// each naming an element (k = rank) or a slice of `data`; `updates` holds one such element or
    /// slice per tuple. The output has data's type.
    static func scatteredType(_ context: OpSchema.Context) throws -> TensorType {
        let (data, indices, updates) = (try context.type(0), try context.type(1), try context.type(2))
        _ = try context.attributes.choice("reduction", scatterReductions)
        guard indices.dtype == .int64 || indices.dtype == .int32 else {
            throw context.error("indices \(context.quote(1, indices)) must be i32 or i64, not \(indices.dtype.rawValue)")
        }
        guard let depth = indices.shape.dims.last?.value, depth <= data.shape.rank else {
            throw context.error("the last axis of indices \(context.quote(1, indices)) must be known and at most the rank of \(context.quote(0, data))")
        }
        let expected = Shape(Array(indices.shape.dims.dropLast()) + Array(data.shape.dims[depth...]))
        guard updates.dtype == data.dtype, updates.shape == expected else {
            throw context.error("updates \(context.quote(2, updates)) must be \(data.dtype.rawValue)\(expected) for indices \(context.quote(1, indices)) into \(context.quote(0, data))")
        }
        if let values = context.constantValue(context.inputName(1)), let extents = data.shape.knownExtents {
            let tuples = values.int64s()
            for (position, value) in tuples.enumerated() {
                let extent = Int64(extents[position % depth])
                guard value >= -extent, value < extent else {
                    throw context.error("index \(value) is out of range for axis \(position % depth) of \(context.quote(0, data))")
                }
            }
        }
        return data
    }

    /// Where ONNX Slice starts on an axis of `extent` (negative counts from the end; clamped).
    static func sliceStart(extent: Int, start: Int, step: Int) -> Int {
        let resolved = start < 0 ? start + extent : start
        return step > 0 ? Swift.min(Swift.max(resolved, 0), extent) : Swift.min(Swift.max(resolved, 0), extent - 1)
    }

    /// ONNX Slice: negative starts/ends count from the end, then clamp to the axis; a symbolic
    /// axis may only be taken whole.
    static func slicedType(_ context: OpSchema.Context) throws -> TensorType {
        let input = try context.type(0)
        let reader = context.attributes
        let starts = try reader.ints("starts")
        let ends = try reader.ints("ends")
        let axes = try reader.optionalInts("axes") ?? Array(0..<starts.count)
        let steps = try reader.optionalInts("steps") ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw context.error("starts, ends, axes and steps must have the same length (\(starts.count), \(ends.count), \(axes.count), \(steps.count))")
        }
        var shape = input.shape
        var seen = Set<Int>()
        for index in starts.indices {
            let axis = try context.axis(axes[index], rank: input.shape.rank, of: 0, input, attribute: "axes entry")
            guard seen.insert(axis).inserted else { throw context.error("slices axis \(axis) twice") }
            let step = steps[index]
            guard step != 0 else { throw context.error("has step 0 on axis \(axis)") }
            guard let extent = input.shape[axis].value else {
                if starts[index] == 0, ends[index] >= Int(Int32.max), step == 1 { continue }
                throw context.error("cannot slice symbolic axis \(axis) of \(context.quote(0, input)) except whole")
            }
            shape[axis] = .known(sliceLength(extent: extent, start: starts[index], end: ends[index], step: step))
        }
        return TensorType(input.dtype, shape)
    }

    /// The number of elements ONNX Slice takes from an axis of `extent`.
    public static func sliceLength(extent: Int, start: Int, end: Int, step: Int) -> Int {
        guard step != 0 else { return 0 }
        var start = start < 0 ? start + extent : start
        var end = end < 0 ? end + extent : end
        if step > 0 {
            start = Swift.min(Swift.max(start, 0), extent)
            end = Swift.min(Swift.max(end, 0), extent)
            return end > start ? (end - start + step - 1) / step : 0
        }
        start = Swift.min(Swift.max(start, 0), extent - 1)
        end = Swift.min(Swift.max(end, -1), extent - 1)
        return start > end ? (start - end - step - 1) / -step : 0
    }
}
