import KeelIR
import KeelKernels

/// Windowed and global pooling, NHWC or NCHW as the node declares.
extension KernelLowering {
    static func lowerPooling(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let geometry = try PoolingGeometry.resolve(node, input: Shape(known: operands.inputShapes[0]))
        let shape = operands.inputShapes[0]
        let kernelGeometry = try Pool2DGeometry(geometry, batch: shape[0], channels: shape[geometry.layout.channelAxis])
        let isMax = node.op == .maxPool2d
        let countIncludePad = geometry.countIncludePad
        return try operands.unaryStep { input, output, context in
            if isMax {
                try Pooling.maxPool(input: input, output: output, geometry: kernelGeometry, context: context)
            } else {
                try Pooling.averagePool(input: input, output: output, geometry: kernelGeometry,
                                        countIncludePad: countIncludePad, context: context)
            }
        }
    }

    static func lowerGlobalPooling(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let shape = operands.inputShapes[0]
        guard shape.count == 4 else { throw operands.unsupported("global pooling needs a rank-4 input, got \(Shape(known: shape))") }
        let layout = Layout(rawValue: try operands.attributes.string("layout")) ?? .nhwc
        let channels = shape[layout.channelAxis]
        let spatial = shape[layout.heightAxis] * shape[layout.widthAxis]
        let isMax = node.op == .globalMaxPool2d
        return try operands.unaryStep { input, output, context in
            if isMax {
                try Pooling.globalMaxPool(input: input, output: output, batch: shape[0], channels: channels,
                                          spatial: spatial, layout: layout.kernelLayout, context: context)
            } else {
                try Pooling.globalAveragePool(input: input, output: output, batch: shape[0], channels: channels,
                                              spatial: spatial, layout: layout.kernelLayout, context: context)
            }
        }
    }
}
