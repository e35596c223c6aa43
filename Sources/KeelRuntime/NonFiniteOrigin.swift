import KeelIR

/// Where the first NaN or infinity of a run came from: an input that already held one, or the
/// first step (in execution order) whose output holds one.
public enum NonFiniteOrigin: Hashable, Sendable, CustomStringConvertible {
    case input(String)
    case node(name: String, op: String, location: SourceLocation?)

    public var description: String {
        switch self {
        case .input(let name): return "input '\(name)' already holds it"
        case let .node(name, op, location): return "first produced by \(op) '\(name)'" + (location.map { " (\($0))" } ?? "")
        }
    }
}

/// How many values of a tensor are NaN, +inf and -inf.
public struct NonFiniteCount: Hashable, Sendable, CustomStringConvertible {
    public var nan = 0
    public var positiveInfinity = 0
    public var negativeInfinity = 0

    public init(_ values: [Float]) {
        for value in values where !value.isFinite {
            if value.isNaN { nan += 1 } else if value > 0 { positiveInfinity += 1 } else { negativeInfinity += 1 }
        }
    }

    public var isZero: Bool { nan == 0 && positiveInfinity == 0 && negativeInfinity == 0 }

    public var description: String {
        [(nan, "NaN"), (positiveInfinity, "+inf"), (negativeInfinity, "-inf")]
            .filter { $0.0 > 0 }.map { "\(formatCount($0.0)) \($0.1)" }.joined(separator: ", ")
    }
}

extension CompiledModel {
    /// Runs `inputs` once more, checking every step's output as it is written: a later in-place
    /// step may overwrite the value, so the outputs alone cannot say where a NaN began.
    public func firstNonFinite(_ inputs: [String: Tensor]) throws -> NonFiniteOrigin? {
        for name in inputNames.sorted() where inputs[name].map({ !NonFiniteCount($0.values).isZero }) ?? false {
            return .input(name)
        }
        let bindings = try bind(inputs)
        let plan = try checkOut(bindings)
        defer { checkIn(plan, bindings) }
        copyInputs(inputs, into: plan)
        let locations = Dictionary(graph.nodes.map { ($0.name, $0.location) }, uniquingKeysWith: { first, _ in first })
        for step in plan.steps {
            try step.run(plan.scratch)
            let nonFinite = step.outputs.indices.contains { index in
                let output = step.outputs[index]
                // A slice of a wider buffer (`ConcatPlacement`): the floats between its rows belong to
                // other values, which may still hold the previous run's.
                if index < step.outputRows.count, let rows = step.outputRows[index] {
                    return (0..<rows.count).contains { row in
                        output[(row * rows.stride)..<(row * rows.stride + rows.length)].contains { !$0.isFinite }
                    }
                }
                guard index < step.outputStorage.count, step.outputStorage[index] == .bf16 else {
                    return output.contains { !$0.isFinite }
                }
                // bf16 halves: all exponent bits set is an infinity or NaN.
                return output.withMemoryRebound(to: UInt16.self) { $0.contains { $0 & 0x7F80 == 0x7F80 } }
            }
            if nonFinite {
                return .node(name: step.node, op: step.op.rawValue, location: locations[step.node] ?? nil)
            }
        }
        return nil
    }
}
