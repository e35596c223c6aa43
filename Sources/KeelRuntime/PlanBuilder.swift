import Foundation
import KeelIR
import KeelKernels

/// Settings shared by every step of a plan.
public struct ExecutionContext: Sendable {
    public var threads: Int
    public init(threads: Int) { self.threads = max(1, threads) }

    /// The CPU capabilities Keel's own kernels use ("AVX2+AVX-512+AVX512_BF16+AMX-BF16", …,
    /// "generic"), after any `KEEL_SIMD` narrowing.
    public static var simdLevel: String { CPUCapabilities.inUse.description }
}

/// Builds an `ExecutionPlan` for one binding of the graph's symbols.
///
/// Views share their input's buffer; unary element-wise ops write over their input when it dies
/// there; everything else gets an arena slot placed by liveness.
struct PlanBuilder {
    let graph: Graph
    let constants: [String: TensorData]
    /// Every constant of the graph, including those whose values were released once prepared.
    let constantNames: Set<String>
    let context: ExecutionContext
    let prepared: PreparedWeights
    let lowering: (StepOperands) throws -> Step

    func build(bindings: [String: Int]) throws -> ExecutionPlan {
        let shapes = try concreteShapes(bindings)
        let inputNames = Set(graph.inputs.map(\.name))
        let outputValues = Set(graph.outputs.map(\.value))

        // Alias roots: views and in-place ops map their output onto their input's root.
        var root: [String: String] = [:]
        func rootOf(_ value: String) -> String {
            var current = value
            while let next = root[current] { current = next }
            return current
        }
        var lastUse: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.presentInputs { lastUse[input] = index }
        }
        func groupLastUse(_ rootValue: String) -> Int {
            lastUse.filter { rootOf($0.key) == rootValue }.map(\.value).max() ?? -1
        }
        for (index, node) in graph.nodes.enumerated() {
            guard let first = node.presentInputs.first, node.outputs.count == 1 else { continue }
            let output = node.outputs[0]
            let aliasing = OpRegistry.schema(for: node.op).aliasing
            if aliasing == .view {
                root[output] = first
            } else if aliasing == .inPlace, !constantNames.contains(rootOf(first)),
                      !outputValues.contains(where: { rootOf($0) == rootOf(first) }),
                      groupLastUse(rootOf(first)) == index {
                root[output] = first
            }
        }

        // Lifetimes of every arena-resident root.
        var requests: [BufferRequest] = []
        var requestIndex: [String: Int] = [:]
        func request(_ value: String, at step: Int) {
            let base = rootOf(value)
            guard !constantNames.contains(base), let shape = shapes[base] else { return }
            if let existing = requestIndex[base] {
                requests[existing].lastStep = max(requests[existing].lastStep, step)
                requests[existing].firstStep = min(requests[existing].firstStep, step)
            } else {
                requestIndex[base] = requests.count
                requests.append(BufferRequest(size: max(shape.reduce(1, *), 1), firstStep: step, lastStep: step))
            }
        }
        for input in graph.inputs { request(input.name, at: 0) }
        for (index, node) in graph.nodes.enumerated() {
            for value in node.presentInputs + node.outputs { request(value, at: index) }
        }
        for output in graph.outputs { request(output.value, at: graph.nodes.count) }

        let memory = MemoryPlanner.plan(requests)
        // Zeroed by calloc, which for an arena this size maps fresh zero pages instead of writing
        // tens of megabytes that the first run overwrites anyway.
        guard let zeroed = calloc(max(memory.arenaSize, 1), MemoryLayout<Float>.stride) else {
            throw RuntimeError.invalidTensor("cannot allocate a \(memory.arenaSize * 4)-byte arena")
        }
        let arena = zeroed.bindMemory(to: Float.self, capacity: max(memory.arenaSize, 1))

        func pointer(_ value: String) -> UnsafeMutablePointer<Float>? {
            let base = rootOf(value)
            if let index = requestIndex[base] { return arena + memory.offsets[index] }
            if let data = constants[base], let buffer = data.floatBuffer, let address = buffer.baseAddress {
                return UnsafeMutablePointer(mutating: address)
            }
            return nil
        }

        var steps: [Step] = []
        do {
            for (index, node) in graph.nodes.enumerated() where OpRegistry.schema(for: node.op).aliasing != .view {
                let operands = StepOperands(
                    node: node,
                    inputShapes: node.inputs.map { shapes[$0] ?? [] },
                    outputShapes: node.outputs.map { shapes[$0] ?? [] },
                    inputs: node.inputs.map { $0.isEmpty ? nil : pointer($0).map { UnsafePointer($0) } },
                    outputs: node.outputs.compactMap { pointer($0) },
                    constants: constants, constantNames: constantNames, context: context, prepared: prepared)
                steps.append(try lowering(operands))
                // A filter this plan no longer reads goes now that it is prepared, not after the
                // whole plan: the originals and the prepared forms are then never all resident.
                for input in node.presentInputs where lastUse[input] == index { prepared.releaseOriginal(input) }
            }
        } catch {
            free(arena)
            throw error
        }

        var inputSlots: [String: (offset: Int, shape: [Int])] = [:]
        for input in graph.inputs where inputNames.contains(input.name) {
            if let index = requestIndex[rootOf(input.name)], let shape = shapes[input.name] {
                inputSlots[input.name] = (memory.offsets[index], shape)
            }
        }
        let outputSlots = graph.outputs.compactMap { output -> (name: String, pointer: UnsafePointer<Float>, shape: [Int])? in
            guard let address = pointer(output.value), let shape = shapes[output.value] else { return nil }
            return (output.name, UnsafePointer(address), shape)
        }
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(steps.map(\.scratchSize).max() ?? 0, 1))
        return ExecutionPlan(bindings: bindings, steps: steps, memory: memory, arena: arena, scratch: scratch,
                             inputSlots: inputSlots, outputSlots: outputSlots)
    }

    /// Every value's extents with the symbols bound; a symbol left unbound is a compile bug or a
    /// graph whose output size depends on data, both reported by name.
    private func concreteShapes(_ bindings: [String: Int]) throws -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for input in graph.inputs {
            if let extents = input.type.shape.binding(bindings).knownExtents { shapes[input.name] = extents }
        }
        for (name, constant) in graph.constants { shapes[name] = constant.type.shape.knownExtents }
        for node in graph.nodes {
            for output in node.outputs {
                guard let type = graph.valueTypes[output] else {
                    throw RuntimeError.unsupported(node: node.name, location: node.location,
                                                   reason: "its output '\(output)' has no inferred type")
                }
                guard let extents = type.shape.binding(bindings).knownExtents else {
                    throw RuntimeError.unsupported(node: node.name, location: node.location,
                                                   reason: "output shape \(type.shape) has unbound symbols")
                }
                guard type.dtype == .float32 else {
                    throw RuntimeError.unsupported(node: node.name, location: node.location,
                                                   reason: "computes \(type.dtype.rawValue) values; the runtime computes float32 only")
                }
                shapes[output] = extents
            }
        }
        return shapes
    }
}
