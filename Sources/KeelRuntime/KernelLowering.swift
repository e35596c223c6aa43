import KeelIR

/// Maps an IR node with concrete shapes onto a kernel call. One function per op family lives in
/// Lowering/; this table is the only place that knows which family handles which op.
enum KernelLowering {
    static func makeStep(_ operands: StepOperands) throws -> Step {
        throw RuntimeError.unsupported(node: operands.node.name, location: operands.node.location,
                                       reason: "op \(operands.node.op.rawValue) has no CPU kernel")
    }
}
