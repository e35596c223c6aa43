import KeelIR
import KeelKernels

/// Ops that move or gather data: transpose, concat, pad, slice, gather, scatter, and reductions.
extension KernelLowering {
    static func lowerTranspose(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        let permutation = try operands.attributes.optionalInts("perm") ?? Array((0..<shape.count).reversed())
        return try operands.unaryStep { input, output, context in
            try DataMovement.transpose(input: input, shape: shape, permutation: permutation, output: output, context: context)
        }
    }

    static func lowerConcat(_ operands: StepOperands) throws -> Step {
        let outputShape = operands.outputShapes[0]
        guard let axis = Shape(known: outputShape).normalizedAxis(try operands.attributes.int("axis")) else {
            throw operands.unsupported("axis is outside \(Shape(known: outputShape))")
        }
        let present = operands.node.inputs.indices.filter { !operands.node.inputs[$0].isEmpty }
        let extents = present.map { operands.inputShapes[$0][axis] }
        let starts = extents.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1) }
        // In a shared buffer (`ConcatPlacement`) only the inputs not yet in place are copied.
        let copied = operands.concatWrite?.copied ?? Array(present.indices)
        let inputs = try copied.map { try operands.input(present[$0]) }
        let outer = outputShape[..<axis].reduce(1, *)
        let inner = outputShape[(axis + 1)...].reduce(1, *)
        let rowExtent = operands.concatWrite?.rootAxisExtent ?? outputShape[axis]
        let output = try operands.output()
        let context = operands.kernelContext
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            try DataMovement.copyIntoSlices(inputs: inputs, axisStarts: copied.map { starts[$0] },
                                            axisExtents: copied.map { extents[$0] }, outer: outer, inner: inner,
                                            outputAxisExtent: rowExtent, output: output, context: context)
        }
    }

    static func lowerPad(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        let pads = try operands.attributes.ints("pads")
        let value = try operands.attributes.float("value")
        return try operands.unaryStep { input, output, context in
            try DataMovement.pad(input: input, shape: shape, pads: pads, value: value, output: output, context: context)
        }
    }

    static func lowerSlice(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        let attributes = operands.attributes
        let region = try DataMovement.resolveSlice(shape: shape, starts: try attributes.ints("starts"),
                                                   ends: try attributes.ints("ends"),
                                                   axes: try attributes.optionalInts("axes"),
                                                   steps: try attributes.optionalInts("steps"))
        return try operands.unaryStep { input, output, context in
            try DataMovement.slice(input: input, shape: shape, region: region, output: output, context: context)
        }
    }

    static func lowerGather(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        guard let axis = Shape(known: shape).normalizedAxis(try operands.attributes.int("axis")) else {
            throw operands.unsupported("axis is outside \(Shape(known: shape))")
        }
        guard operands.node.inputs.count > 1, let indices = operands.constants[operands.node.inputs[1]] else {
            throw operands.unsupported("its indices are not a constant")
        }
        let extent = shape[axis]
        let resolved = indices.int64s().map { $0 < 0 ? $0 + Int64(extent) : $0 }
        guard resolved.allSatisfy({ $0 >= 0 && $0 < Int64(extent) }) else {
            throw operands.unsupported("an index is outside 0..<\(extent) on axis \(axis)")
        }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        return try operands.unaryStep { input, output, context in
            try resolved.withUnsafeBufferPointer { indexBuffer in
                try DataMovement.gather(input: input, outer: outer, axisExtent: extent, inner: inner,
                                        indices: indexBuffer, output: output, context: context)
            }
        }
    }

    /// Index tuples are resolved to element offsets here, once: they must be constants (as the
    /// exporters write them for the slice assignments ScatterND comes from).
    static func lowerScatterND(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        guard operands.node.inputs.count > 2, let indices = operands.constants[operands.node.inputs[1]] else {
            throw operands.unsupported("its indices are not a constant")
        }
        guard let depth = indices.shape.last, depth <= shape.count else {
            throw operands.unsupported("its index tuples do not fit \(Shape(known: shape))")
        }
        let strides = ReferenceLoops.strides(shape)
        let tuples = indices.int64s()
        var offsets: [Int] = []
        for first in stride(from: 0, to: tuples.count, by: max(depth, 1)) {
            var offset = 0
            for axis in 0..<depth {
                let (value, extent) = (tuples[first + axis], Int64(shape[axis]))
                guard value >= -extent, value < extent else {
                    throw operands.unsupported("index \(value) is outside 0..<\(extent) on axis \(axis)")
                }
                offset += Int(value < 0 ? value + extent : value) * strides[axis]
            }
            offsets.append(offset)
        }
        if depth == 0 { offsets = Array(repeating: 0, count: indices.shape.dropLast().reduce(1, *)) }
        let reduction: ScatterReduction
        switch try operands.attributes.string("reduction") {
        case "add": reduction = .add
        case "mul": reduction = .multiply
        case "max": reduction = .maximum
        case "min": reduction = .minimum
        default: reduction = .replace
        }
        let pieceSize = shape[depth...].reduce(1, *)
        let (data, updates, output) = (try operands.input(0), try operands.input(2), try operands.output())
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            try DataMovement.scatterND(data: data, offsets: offsets, pieceSize: pieceSize, updates: updates,
                                       reduction: reduction, output: output)
        }
    }

    /// Running sums in Float, one run after another: the op appears on small position grids
    /// (Fourier encodings of a mask), which constant folding usually computes at compile time.
    static func lowerCumulativeSum(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        let attributes = operands.attributes
        let axis = try attributes.int("axis")
        guard let sum = CumulativeSum(shape: shape, axis: axis, exclusive: try attributes.bool("exclusive"),
                                      reverse: try attributes.bool("reverse")) else {
            throw operands.unsupported("axis \(axis) is outside \(Shape(known: shape))")
        }
        return try operands.unaryStep { input, output, _ in
            sum.run(read: { input[$0] }, write: { output[$0] = $1 })
        }
    }

    static func lowerReduce(_ operands: StepOperands, _ reduction: Reduction) throws -> Step {
        let shape = operands.inputShapes[0]
        let requested = try operands.attributes.optionalInts("axes") ?? Array(0..<shape.count)
        let axes = try requested.map { axis -> Int in
            guard let resolved = Shape(known: shape).normalizedAxis(axis) else {
                throw operands.unsupported("axis \(axis) is outside \(Shape(known: shape))")
            }
            return resolved
        }
        return try operands.unaryStep { input, output, context in
            try Reduce.apply(reduction, input: input, shape: shape, axes: axes.isEmpty ? Array(0..<shape.count) : axes,
                             output: output, context: context)
        }
    }
}
