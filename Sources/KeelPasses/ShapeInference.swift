import Foundation
import KeelIR

/// Re-infers the type of every value from the graph inputs and constants, in node order, with
/// the op registry's shape functions. The first pass: everything after it relies on types.
/// It verifies the graph's structure first, so a misspelt attribute (`stride`) is an error
/// rather than a silently applied default.
public struct ShapeInference: Pass {
    public var name: String { "shape-inference" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        let memo = Self.memo
        if let last = memo?.last, last == graph { return PassResult(graph: last, statistic: statistic(last)) }
        let result = try infer(graph)
        if let memo, result.everyOutputTyped { memo.last = result.graph }
        return PassResult(graph: result.graph, statistic: statistic(result.graph))
    }

    /// The last graph inference produced in the current `reusingResults` scope. A graph equal to
    /// it needs no inference: it is its own result, verified already. Passes re-infer the graph
    /// they are handed and the graph they finish with, so a pipeline of a dozen passes swept a
    /// 100,000-node graph some 36 times; now only passes that change something cost a sweep.
    /// Equality is cheap here: an unchanged graph shares its arrays and dictionaries.
    @TaskLocal static var memo: InferenceMemo?

    /// Runs `body` with inference results reused as described at `memo` (inside a scope already, in that one).
    public static func reusingResults<Result>(_ body: () throws -> Result) rethrows -> Result {
        if memo != nil { return try body() }
        return try $memo.withValue(InferenceMemo(), operation: body)
    }

    /// Whether `graph` is the last result of inference in the current scope (so verified already).
    public static func isLastResult(_ graph: Graph) -> Bool {
        memo?.last.map { $0 == graph } ?? false
    }

    private func statistic(_ graph: Graph) -> String {
        let shown = graph.outputs.map { "\($0.name) \(graph.valueTypes[$0.value].map(\.description) ?? "?")" }.joined(separator: ", ")
        return "typed \(graph.valueTypes.count) values over \(graph.nodes.count) nodes; \(shown)"
    }

    private func infer(_ graph: Graph) throws -> (graph: Graph, everyOutputTyped: Bool) {
        try verify(graph, requiringTypes: false)
        var types: [String: TensorType] = [:]
        for input in graph.inputs {
            try checkAddressable(input.type, of: "input '\(input.name)'", at: input.location)
            types[input.name] = input.type
        }
        for (name, constant) in graph.constants {
            try checkAddressable(constant.type, of: "weight '\(name)'", at: constant.location)
            types[name] = constant.type
        }
        let constants = graph.constants
        let lookup: (String) -> TensorData? = { constants[$0]?.data }
        // What `verify(requiringTypes: true)` checks beyond the structure verified above.
        var everyOutputTyped = true
        for node in graph.nodes {
            var inputTypes: [TensorType?] = []
            for input in node.inputs {
                if input.isEmpty { inputTypes.append(nil); continue }
                guard let type = types[input] else {
                    let later = graph.producer(of: input).map { ", which node '\($0.name)' produces later (nodes out of topological order)" } ?? ""
                    throw Diagnostic("\(node.op.rawValue) '\(node.name)' reads undefined value '\(input)'\(later)", at: node.location)
                }
                inputTypes.append(type)
            }
            let outputs = try inferOutputTypes(of: node, inputTypes: inputTypes, constantValue: lookup)
            if outputs.count < node.outputs.count { everyOutputTyped = false }
            for (value, type) in zip(node.outputs, outputs) {
                try checkAddressable(type, of: "\(node.op.rawValue) '\(node.name)'", at: node.location)
                types[value] = type
            }
        }
        for output in graph.outputs where types[output.value] == nil {
            throw Diagnostic("output '\(output.name)' names undefined value '\(output.value)'", at: output.location)
        }
        var result = graph
        result.valueTypes = types
        return (result, everyOutputTyped)
    }

    /// Refuses a value whose known extents multiply past what an Int can address, so no later
    /// size, stride or MAC product can wrap silently.
    private func checkAddressable(_ type: TensorType, of what: String, at location: SourceLocation?) throws {
        guard Shape.checkedElementCount(type.shape.dims.map { $0.value ?? 1 }) != nil else {
            throw Diagnostic("\(what) has shape \(type.shape): more than \(formatCount(Shape.maximumElementCount)) elements per batch",
                             at: location)
        }
    }
}

/// The graph inference produced last, for `ShapeInference.memo`.
final class InferenceMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Graph?

    var last: Graph? {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
