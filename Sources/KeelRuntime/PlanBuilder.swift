import Foundation
import KeelIR
import KeelKernels

/// Settings shared by every step of a plan.
public struct ExecutionContext: Sendable {
    public var threads: Int
    /// The precision of convolution and dense products (pools, norms, softmax and outputs stay fp32).
    public var precision: Precision
    /// What plans may allocate for activations; checked before the arena is.
    public var memoryBudget: MemoryBudget
    /// bf16 plans only: keep activations that only bf16 layers read in bf16 (`ActivationStorageRule`).
    /// false rounds them in each reader instead, to the same values: for comparing the two.
    public var bf16Activations: Bool
    /// Which layers of a batch of several images run image by image (`ImageTiling`); results do not
    /// depend on it.
    public var batchSchedule: BatchSchedule
    /// The batch a model with a symbolic batch has its weights prepared for, before any plan: the
    /// batch its caller will run. Prepared for batch 1 and run at 8, ResNet18 held both the
    /// im2col panels batch 1 reads and the Winograd forms batch 8 derives from them (peak RSS
    /// 286 MB against 235 prepared for 8). Other batches still run: they derive what they can
    /// from the forms held, or run a filter held only in a Winograd form on that tile.
    public var preparedBatch: Int
    public init(threads: Int, precision: Precision = .fp32, memoryBudget: MemoryBudget = .available,
                bf16Activations: Bool = true, batchSchedule: BatchSchedule = .automatic, preparedBatch: Int = 1) {
        self.threads = max(1, threads)
        self.precision = precision
        self.memoryBudget = memoryBudget
        self.bf16Activations = bf16Activations
        self.batchSchedule = batchSchedule
        self.preparedBatch = max(1, preparedBatch)
    }

    /// The most threads a model runs on: plans allocate scratch per thread, and past this the
    /// number is a mistake rather than a machine.
    public static let maximumThreads = 1024

    /// Refuses a thread count a plan cannot honour (the initialiser's clamp is for internal callers).
    public static func checkThreads(_ threads: Int) throws {
        guard (1...maximumThreads).contains(threads) else { throw RuntimeError.invalidThreads(threads) }
    }

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

    /// A transpose that moves only axes of extent 1 in this plan (the batch axis at batch 1, as
    /// around PyTorch's token-first attention) leaves every element where it was: a view here.
    static func movesOnlyUnitAxes(_ node: Node, shapes: [String: [Int]],
                                  storage: (String) -> ActivationStorage) -> Bool {
        guard node.op == .transpose, node.outputs.count == 1, let input = node.presentInputs.first,
              let shape = shapes[input], storage(input) == .fp32, storage(node.outputs[0]) == .fp32,
              let permutation = try? AttributeReader(node: node).optionalInts("perm") ?? Array(shape.indices.reversed()),
              permutation.count == shape.count, permutation.allSatisfy(shape.indices.contains) else { return false }
        let moved = permutation.filter { shape[$0] != 1 }
        return moved == moved.sorted()
    }

    func build(bindings: [String: Int]) throws -> ExecutionPlan {
        let shapes = try concreteShapes(bindings)
        let bf16Values = ActivationStorageRule.bf16Values(graph: graph, shapes: shapes, context: context,
                                                          prepared: prepared)
        func storage(_ value: String) -> ActivationStorage { bf16Values.contains(value) ? .bf16 : .fp32 }
        let inputNames = Set(graph.inputs.map(\.name))
        let outputValues = Set(graph.outputs.map(\.value))

        // Alias roots: views and in-place ops map their output onto their input's root. Each
        // value maps straight to its root, and each root keeps the last step that reads any value
        // of its group, so every question below is one lookup (linear in the graph's size).
        var root: [String: String] = [:]
        func rootOf(_ value: String) -> String { root[value] ?? value }
        var lastUse: [String: Int] = [:]
        var producer: [String: Node] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.presentInputs { lastUse[input] = index }
            for output in node.outputs { producer[output] = node }
        }
        func isActivation(_ value: String) -> Bool {
            !constantNames.contains(value) && storage(value) == .fp32 && shapes[value] != nil
        }
        // batch_norms a 1×1 convolution applies as it packs its input: the convolution reads the
        // batch_norm's input instead, so that input lives until the convolution.
        let prologues = BatchNormPrologue.find(graph: graph, shapes: shapes, pinned: outputValues, context: context,
                                               prepared: prepared, isActivation: isActivation,
                                               isConstant: constantNames.contains)
        // Squeeze-excitation gates a 1×1 convolution applies to its filter: the convolution reads the
        // mul's activations and its gate, as a fifth input (after the residual's place).
        let gates = ChannelScaleFusion.find(graph: graph, shapes: shapes, pinned: outputValues, context: context,
                                            prepared: prepared, isActivation: isActivation)
        // NCHW→NHWC transposes a direct convolution does as it reads its input rows (PyTorch's image
        // into the stem): the convolution reads the transpose's input.
        let layoutTransposes = InputLayoutFusion.find(graph: graph, shapes: shapes, pinned: outputValues, context: context,
                                                      prepared: prepared, isActivation: isActivation)
        // Pointwise expansions a depthwise convolution computes band by band as it reads them: the
        // depthwise convolution reads the expansion's input.
        let expansions = ExpansionFusion.find(graph: graph, shapes: shapes, pinned: outputValues, context: context,
                                              prepared: prepared, isActivation: isActivation,
                                              claimed: Set(prologues.keys).union(gates.keys).union(layoutTransposes.keys))
        let absorbed = Set(prologues.values).union(gates.values.map(\.mul)).union(layoutTransposes.values)
            .union(expansions.values)
        /// The value an absorbed node read in place of the one it produced for node `index`.
        func fusedInput(_ index: Int) -> String? {
            (prologues[index] ?? layoutTransposes[index] ?? expansions[index]).map { graph.nodes[$0].inputs[0] }
        }
        func readNames(_ index: Int) -> [String] {
            var names = graph.nodes[index].inputs
            if let input = fusedInput(index) { names[0] = input }
            if let gate = gates[index] {
                names[0] = gate.input
                names += [String](repeating: "", count: max(0, ChannelScaleFusion.inputPosition - names.count))
                names.append(gate.scales)
            }
            return names
        }
        for convolution in Set(prologues.keys).union(layoutTransposes.keys).union(expansions.keys) {
            guard let input = fusedInput(convolution) else { continue }
            lastUse[input] = max(lastUse[input] ?? -1, convolution)
        }
        for (convolution, gate) in gates {
            for value in [gate.input, gate.scales] { lastUse[value] = max(lastUse[value] ?? -1, convolution) }
        }
        var groupLastUse = lastUse
        var outputRoots = outputValues
        let views = Set(graph.nodes.indices.filter { index in
            OpRegistry.schema(for: graph.nodes[index].op).aliasing == .view
                || Self.movesOnlyUnitAxes(graph.nodes[index], shapes: shapes, storage: storage)
        })
        // Concatenations inside a later one's buffer (DenseNet's blocks): one root, an offset each.
        // Convolutions among their inputs write their channels there, at the whole batch and image by
        // image alike (`ImageTiling` may run them either way).
        func writesPixelRows(_ index: Int) -> Bool {
            let node = graph.nodes[index]
            guard node.op == .conv2d, gates[index] == nil, layoutTransposes[index] == nil, expansions[index] == nil,
                  node.inputs.count > 1,
                  let input = shapes[node.inputs[0]], !input.isEmpty, let kernel = shapes[node.inputs[1]],
                  let (activation, softmax) = try? node.fusedActivation.kernelEpilogue, !softmax else { return false }
            return [input, [1] + input.dropFirst()].allSatisfy { shape in
                let layer = try? ConvolutionLayer(node, inputShape: shape, kernelShape: kernel, precision: context.precision,
                                                  prepared: prepared)
                return layer?.writesPixelRows(activation: activation) ?? false
            }
        }
        let concats = ConcatPlacement(graph: graph, shapes: shapes, pinned: outputValues, isActivation: isActivation,
                                      writesPixelRows: writesPixelRows)
        for (value, region) in concats.regions {
            root[value] = region.root
            groupLastUse[region.root] = max(groupLastUse[region.root] ?? -1, lastUse[value] ?? -1)
        }
        for (index, node) in graph.nodes.enumerated() {
            guard let first = node.presentInputs.first, node.outputs.count == 1 else { continue }
            let output = node.outputs[0]
            let base = rootOf(first)
            let aliasing = OpRegistry.schema(for: node.op).aliasing
            let aliases = views.contains(index)
                || (aliasing == .inPlace && !constantNames.contains(base) && !outputRoots.contains(base)
                    && groupLastUse[base] == index)
            guard aliases else { continue }
            root[output] = base
            groupLastUse[base] = max(groupLastUse[base] ?? -1, lastUse[output] ?? -1)
            if outputValues.contains(output) { outputRoots.insert(base) }
        }
        func isStep(_ index: Int) -> Bool { !views.contains(index) && !absorbed.contains(index) }
        // A bf16 value packs two values per float slot, so its images' slices start on a slot
        // only when each image holds an even number of values; an odd one keeps the whole batch.
        func splitsIntoImages(_ value: String) -> Bool {
            guard !constantNames.contains(value), let shape = shapes[value], let batch = shape.first, batch > 0 else { return false }
            return storage(value) == .fp32 || (shape.reduce(1, *) / batch) % 2 == 0
        }
        var tiling = ImageTiling.plan(graph: graph, shapes: shapes, bindings: bindings, schedule: context.batchSchedule,
                                      isStep: isStep, reads: readNames, isActivation: splitsIntoImages,
                                      isConstant: constantNames.contains, rootOf: rootOf)

        // Lifetimes of every arena-resident root, each checked against the memory budget.
        var requests: [BufferRequest] = []
        var requestIndex: [String: Int] = [:]
        var requestValues: [String] = []
        func owner(_ value: String) -> String {
            producer[value].map { "\($0.op.rawValue) '\($0.name)'" } ?? "input '\(value)'"
        }
        func request(_ value: String, at step: Int) throws {
            let base = rootOf(value)
            guard !constantNames.contains(base), let shape = shapes[base] else { return }
            if let existing = requestIndex[base] {
                requests[existing].lastStep = max(requests[existing].lastStep, step)
                requests[existing].firstStep = min(requests[existing].firstStep, step)
            } else {
                // A bf16 value takes half the float slots (its root is itself: only convolutions read it).
                let count = Shape.checkedElementCount(shape).map { BF16Convolution.slots($0, in: storage(base)) }
                try context.memoryBudget.check(count.flatMap { MemoryBudget.bytes($0, elementSize: 4) },
                                               for: "\(owner(base)) (output \(Shape(known: shape)))")
                requestIndex[base] = requests.count
                requestValues.append(base)
                requests.append(BufferRequest(size: max(count ?? 1, 1), firstStep: step, lastStep: step))
            }
        }
        for input in graph.inputs { try request(input.name, at: 0) }
        for (index, node) in graph.nodes.enumerated() where !absorbed.contains(index) {
            // An input a concatenation finds in place is not read: it may die at its copy.
            let names = readNames(index)
            let read = names.indices.filter { !names[$0].isEmpty && concats.reads(node: index, position: $0) }
            for value in read.map({ names[$0] }) + node.outputs { try request(value, at: index) }
        }
        for output in graph.outputs { try request(output.value, at: graph.nodes.count) }
        // Every buffer fits the budget, so the arena's sums cannot overflow (each is at most
        // available memory); the arena as a whole is checked too, naming its largest buffer.
        var memory = MemoryPlanner.plan(requests)
        var oneImage: Set<String> = []
        if let candidate = tiling {
            // Chosen automatically, image by image never costs memory: runs whose buffers, alive
            // across the whole run, would take more than the whole batch's arena keep the batch.
            var tiledRequests = requests
            let held = candidate.place(&tiledRequests, roots: requestValues,
                                       pinned: outputRoots.union((graph.inputs.map(\.name) + graph.outputs.map(\.value)).map(rootOf)))
            var tiledMemory = MemoryPlanner.plan(tiledRequests)
            if tiledMemory.arenaSize <= memory.arenaSize || context.batchSchedule == .imageByImage {
                tiledMemory.naiveSize = memory.naiveSize
                (memory, oneImage, requests) = (tiledMemory, held, tiledRequests)
            } else {
                tiling = nil
            }
        }
        if let largest = requests.indices.max(by: { requests[$0].size < requests[$1].size }) {
            try context.memoryBudget.check(MemoryBudget.bytes(memory.arenaSize, elementSize: 4),
                                           for: "the activations (largest: \(owner(requestValues[largest])))")
        }
        // Zeroed by calloc, which for an arena this size maps fresh zero pages instead of writing
        // tens of megabytes that the first run overwrites anyway; on a cache line, like the
        // planner's offsets.
        guard let (arena, arenaAllocation) = CacheLineMemory.allocateZeroedFloats(memory.arenaSize) else {
            throw RuntimeError.invalidTensor("cannot allocate a \(memory.arenaSize * 4)-byte arena")
        }

        func pointer(_ value: String) -> UnsafeMutablePointer<Float>? {
            let base = rootOf(value)
            if let index = requestIndex[base] { return arena + memory.offsets[index] + (concats.regions[value]?.offset ?? 0) }
            if let data = constants[base], let buffer = data.floatBuffer, let address = buffer.baseAddress {
                return UnsafeMutablePointer(mutating: address)
            }
            return nil
        }

        var steps: [Step] = []
        do {
            /// A node's operands over the whole batch, or over image `image` alone: its activations'
            /// first extent 1 and their pointers that image's slice of their buffers.
            func stepOperands(_ index: Int, image: Int? = nil) -> StepOperands {
                let (node, inputs) = (graph.nodes[index], readNames(index))
                let slice = image.flatMap { image in tiling.map { (image, $0.batch) } }
                func shape(_ value: String) -> [Int] {
                    guard let shape = shapes[value] else { return [] }
                    guard slice != nil, !constantNames.contains(value), !shape.isEmpty else { return shape }
                    return [1] + shape.dropFirst()
                }
                func address(_ value: String) -> UnsafeMutablePointer<Float>? {
                    let root = rootOf(value)
                    guard let (image, batch) = slice, !constantNames.contains(root), !oneImage.contains(root),
                          let extents = shapes[root] else { return pointer(value) }
                    // Float slots per image: half the values of a bf16 buffer (an even count; `splitsIntoImages`).
                    let slots = BF16Convolution.slots(extents.reduce(1, *) / batch, in: storage(root))
                    return pointer(value).map { $0 + image * slots }
                }
                func rows(_ value: String) -> ConcatPlacement.Rows? {
                    guard var rows = concats.regions[value]?.rows else { return nil }
                    if let (_, batch) = slice { rows.count /= batch }
                    return rows
                }
                return StepOperands(
                    node: node,
                    inputShapes: inputs.map(shape),
                    outputShapes: node.outputs.map(shape),
                    inputs: inputs.map { $0.isEmpty ? nil : address($0).map { UnsafePointer($0) } },
                    outputs: node.outputs.compactMap(address),
                    inputStorage: inputs.map(storage), outputStorage: node.outputs.map(storage),
                    inputRows: inputs.map(rows), outputRows: node.outputs.map(rows), concatWrite: concats.writes[index],
                    constants: constants, constantNames: constantNames, context: context, prepared: prepared)
            }
            func appendStep(_ index: Int, image: Int?) throws {
                let node = graph.nodes[index]
                var operands = stepOperands(index, image: image)
                if let norm = prologues[index] {
                    operands.prologue = try KernelLowering.batchNormPrologue(stepOperands(norm, image: image))
                    for input in graph.nodes[norm].presentInputs.dropFirst() where lastUse[input] == norm {
                        prepared.releaseOriginal(input)
                    }
                }
                if let expansion = expansions[index] {
                    operands.expansion = try KernelLowering.expansion(stepOperands(expansion, image: image))
                    for input in graph.nodes[expansion].presentInputs.dropFirst() where lastUse[input] == expansion {
                        prepared.releaseOriginal(input)
                    }
                }
                if gates[index] != nil { operands.inputScales = try operands.input(ChannelScaleFusion.inputPosition) }
                operands.readsChannelsFirst = layoutTransposes[index] != nil
                var step = try lowering(operands)
                // Bytes each step must at least move (its inputs, weights included, and outputs),
                // for the profile's GB/s of memory-bound steps.
                var values = Array(zip(operands.inputShapes + operands.outputShapes, operands.inputStorage + operands.outputStorage))
                if let write = concats.writes[index] {
                    // A concatenation of a shared buffer moves only what it copies, once read and once written.
                    let copied = write.copied.map { (operands.inputShapes[$0], operands.inputStorage[$0]) }
                    values = copied + copied
                }
                step.bytes = 4 * Double(values.reduce(0) { $0 + BF16Convolution.slots($1.0.reduce(1, *), in: $1.1) })
                step.outputs = try operands.outputs.indices.map { UnsafeBufferPointer(try operands.output($0)) }
                step.outputStorage = operands.outputStorage
                step.outputRows = operands.outputRows
                step.choice.output = operands.outputStorage.first ?? .fp32
                steps.append(step)
                // A filter this plan no longer reads goes now that it is prepared, not after the
                // whole plan: the originals and the prepared forms are then never all resident.
                for input in node.presentInputs where lastUse[input] == index { prepared.releaseOriginal(input) }
            }
            var index = 0
            while index < graph.nodes.count {
                if let run = tiling?.run(startingAt: index), let batch = tiling?.batch {
                    for image in 0..<batch {
                        for member in run where isStep(member) { try appendStep(member, image: image) }
                    }
                    index = run.upperBound + 1
                } else {
                    if isStep(index) { try appendStep(index, image: nil) }
                    index += 1
                }
            }
        } catch {
            free(arenaAllocation)
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
        let scratch = CacheLineMemory.allocateFloats(max(steps.map(\.scratchSize).max() ?? 0, 1))
        return ExecutionPlan(bindings: bindings, steps: steps, memory: memory, arena: arena,
                             arenaAllocation: arenaAllocation, scratch: scratch,
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
