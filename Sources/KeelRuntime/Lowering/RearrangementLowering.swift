import KeelIR
import KeelKernels

/// split, expand, tile and the depth/space block moves.
extension KernelLowering {
    static func lowerSplit(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        guard let axis = Shape(known: shape).normalizedAxis(try operands.attributes.int("axis")) else {
            throw operands.unsupported("axis is outside \(Shape(known: shape))")
        }
        let extents = operands.outputShapes.map { $0.count == shape.count ? $0[axis] : 0 }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let input = try operands.input(0)
        let outputs = try operands.outputShapes.indices.map { try operands.output($0) }
        let context = operands.kernelContext
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            try DataMovement.split(input: input, axisExtents: extents, outer: outer, inner: inner, outputs: outputs,
                                   context: context)
        }
    }

    static func lowerExpand(_ operands: StepOperands) throws -> Step {
        let inputShape = operands.inputShapes[0]
        let outputShape = operands.outputShapes[0]
        return try operands.unaryStep { input, output, context in
            try Broadcast.expand(input: input, inputShape: inputShape, output: output, outputShape: outputShape,
                                 context: context)
        }
    }

    static func lowerTile(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        let repeats = try operands.attributes.ints("repeats")
        return try operands.unaryStep { input, output, context in
            try DataMovement.tile(input: input, shape: shape, repeats: repeats, output: output, context: context)
        }
    }

    static func lowerBlockMove(_ operands: StepOperands) throws -> Step {
        let toSpace = operands.node.op == .depthToSpace
        // The geometry describes the depth side: the input of depth_to_space, the output of space_to_depth.
        let shape = toSpace ? operands.inputShapes[0] : operands.outputShapes[0]
        guard shape.count == 4 else { throw operands.unsupported("needs a rank-4 image, got \(Shape(known: shape))") }
        let attributes = operands.attributes
        let layout = Layout(rawValue: try attributes.string("layout")) ?? .nhwc
        let geometry = BlockGeometry(batch: shape[0], channels: shape[layout.channelAxis], height: shape[layout.heightAxis],
                                     width: shape[layout.widthAxis], blockSize: try attributes.int("block_size"),
                                     order: try attributes.string("mode") == "CRD" ? .columnRowDepth : .depthColumnRow,
                                     layout: layout.kernelLayout)
        return try operands.unaryStep { input, output, context in
            if toSpace {
                try DataMovement.depthToSpace(input: input, geometry: geometry, output: output, context: context)
            } else {
                try DataMovement.spaceToDepth(input: input, geometry: geometry, output: output, context: context)
            }
        }
    }
}
