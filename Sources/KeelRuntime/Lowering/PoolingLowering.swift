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
        if operands.storage(ofInput: 0) == .bf16 || operands.outputStorage.first == .bf16 {
            // A subsample between bf16 layers (`ActivationStorageRule`) moves their bf16 values.
            guard isMax, Pooling.isSubsample(kernelGeometry), operands.storage(ofInput: 0) == operands.outputStorage.first
            else { throw operands.unsupported("only a 1x1 max pool moves bf16 values") }
            var step = try operands.unaryStep { input, output, _ in
                try Pooling.subsampleBF16(input: input, output: output, geometry: kernelGeometry)
            }
            step.choice = KernelChoice(precision: .bf16, algorithm: "subsample")
            return step
        }
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
