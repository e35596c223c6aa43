import KeelIR
import KeelKernels

/// Unary activations, broadcasting binary ops and variadic sums.
extension KernelLowering {
    static func lowerUnary(_ operands: StepOperands, _ operation: UnaryOperation) throws -> Step {
        try operands.unaryStep { input, output, context in
            try Unary.apply(operation, input: input, output: output, count: output.count, context: context)
        }
    }

    static func lowerBinary(_ operands: StepOperands, _ operation: BinaryOperation) throws -> Step {
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

    /// Pow by a constant single exponent that has an exact cheaper form: x·x for 2, 1/x for -1
    /// (both correctly rounded, as pow is), a copy for 1. StarReLU's square (CAFormer, ConvFormer)
    /// through pow took a quarter of CAFormer-S18's time. Other exponents run pow.
    static func lowerPower(_ operands: StepOperands) throws -> Step {
        let exponent = operands.constants[operands.node.inputs[1]].flatMap { $0.elementCount == 1 ? $0.floats().first : nil }
        guard let exponent, operands.inputShapes[0] == operands.outputShapes.first else { return try lowerBinary(operands, .power) }
        switch exponent {
        case 2:
            let (x, shape) = (try operands.input(0), operands.inputShapes[0])
            let output = try operands.output()
            let context = operands.kernelContext
            return Step(node: operands.node.name, op: operands.node.op) { _ in
                try Broadcast.binary(.multiply, a: x, aShape: shape, b: x, bShape: shape, output: output, context: context)
            }
        case -1: return try lowerUnary(operands, .reciprocal)
        case 1: return try lowerCopy(operands)
        default: return try lowerBinary(operands, .power)
        }
    }

    /// Where with a constant condition (a bool tensor the float32 runtime cannot compute, but
    /// can read once, here); x and y are float32 values.
    static func lowerWhere(_ operands: StepOperands) throws -> Step {
        // Constants reach the plan as float32 (a bool is 0 or 1).
        guard let condition = operands.constants[operands.node.inputs[0]] else {
            throw operands.unsupported("its condition '\(operands.node.inputs[0])' is computed at run time; the float32 runtime holds no bool values")
        }
        let flags = condition.floats().map { $0 != 0 ? UInt8(1) : 0 }
        let (x, y) = (try operands.input(1), try operands.input(2))
        let shapes = operands.inputShapes
        let output = try operands.output()
        let context = operands.kernelContext
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            try Broadcast.select(condition: flags, conditionShape: shapes[0], x: x, xShape: shapes[1], y: y, yShape: shapes[2],
                                 output: output, context: context)
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
