import KeelIR
import KeelKernels

/// Unary activations, broadcasting binary ops and variadic sums.
extension KernelLowering {
    static func lowerUnary(_ operands: StepOperands) throws -> Step {
        let attributes = operands.attributes
        let operation: UnaryOperation
        switch operands.node.op {
        case .relu: operation = .relu
        case .leakyRelu: operation = .leakyRelu(alpha: try attributes.float("alpha"))
        case .elu: operation = .elu(alpha: try attributes.float("alpha"))
        case .selu: operation = .selu(alpha: try attributes.float("alpha"), gamma: try attributes.float("gamma"))
        case .sigmoid: operation = .sigmoid
        case .tanh: operation = .tanh
        case .gelu: operation = try attributes.string("approximate") == "tanh" ? .geluTanh : .gelu
        case .erf: operation = .erf
        case .softplus: operation = .softplus
        case .hardSigmoid: operation = .hardSigmoid(alpha: try attributes.float("alpha"), beta: try attributes.float("beta"))
        case .hardSwish: operation = .hardSwish
        case .swish: operation = .swish
        case .clip: operation = .clip(min: try attributes.float("min"), max: try attributes.float("max"))
        case .sqrt: operation = .sqrt
        case .exp: operation = .exp
        case .log: operation = .log
        case .neg: operation = .negate
        case .abs: operation = .absolute
        default: throw operands.unsupported("\(operands.node.op.rawValue) is not a unary op")
        }
        return try operands.unaryStep { input, output, context in
            try Unary.apply(operation, input: input, output: output, count: output.count, context: context)
        }
    }

    static func lowerBinary(_ operands: StepOperands) throws -> Step {
        let operation: BinaryOperation
        switch operands.node.op {
        case .add: operation = .add
        case .sub: operation = .subtract
        case .mul: operation = .multiply
        case .div: operation = .divide
        case .pow: operation = .power
        case .max: operation = .maximum
        case .min: operation = .minimum
        case .prelu: operation = .prelu
        default: throw operands.unsupported("\(operands.node.op.rawValue) is not a binary op")
        }
        let a = try operands.input(0)
        let b = try operands.input(1)
        let aShape = operands.inputShapes[0]
        let bShape = operands.inputShapes[1]
        let output = try operands.output()
        let context = operands.kernelContext
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            try Broadcast.binary(operation, a: a, aShape: aShape, b: b, bShape: bShape, output: output, context: context)
        }
    }

    static func lowerSum(_ operands: StepOperands) throws -> Step {
        let present = operands.node.inputs.indices.filter { !operands.node.inputs[$0].isEmpty }
        let inputs = try present.map { try operands.input($0) }
        let shapes = present.map { operands.inputShapes[$0] }
        let output = try operands.output()
        let context = operands.kernelContext
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            try Broadcast.sum(inputs: inputs, shapes: shapes, output: output, context: context)
        }
    }
}
