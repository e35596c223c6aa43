import Foundation
import KeelIR
import KeelKernels

/// Where a value lives while a plan runs.
enum Slot: Hashable {
    /// Elements at an offset of the plan's arena.
    case arena(offset: Int, count: Int)
    /// A float32 constant, converted once when the model is compiled.
    case constant(String)
}

/// One kernel invocation with every pointer and size resolved when the plan is built, so
/// running is a loop over closures with no lookups.
struct Step {
    var node: String
    var op: OpKind
    /// Floating-point operations, for the per-layer profile.
    var flops: Double = 0
    /// Bytes of inputs and outputs, for the profile's GB/s.
    var bytes: Double = 0
    /// Elements of scratch the kernel needs; the plan allocates the largest once, since steps run one at a time.
    var scratchSize: Int = 0
    /// The precision, algorithm and kernel chosen, for `keel bench --profile` and `keel compile --json`.
    var choice: KernelChoice = .fp32
    /// What the step writes, for finding the first step that produced a NaN or infinity.
    var outputs: [UnsafeBufferPointer<Float>] = []
    /// How each output is stored: a bf16 one holds two values per float of `outputs`.
    var outputStorage: [ActivationStorage] = []
    /// Outputs that are rows of a wider buffer (`ConcatPlacement`), nil where contiguous.
    var outputRows: [ConcatPlacement.Rows?] = []
    var run: (_ scratch: UnsafeMutableBufferPointer<Float>) throws -> Void
}

/// Concrete shapes of one node's inputs and outputs once the batch is bound, with the
/// pointers the step reads and writes.
struct StepOperands {
    var node: Node
    var inputShapes: [[Int]]
    var outputShapes: [[Int]]
    var inputs: [UnsafePointer<Float>?]
    var outputs: [UnsafeMutablePointer<Float>]
    /// How each input and output is stored (`ActivationStorageRule`); only bf16 convolutions meet bf16.
    var inputStorage: [ActivationStorage]
    var outputStorage: [ActivationStorage]
    /// Inputs and outputs that are slices of a wider buffer (`ConcatPlacement`), nil where contiguous.
    var inputRows: [ConcatPlacement.Rows?] = []
    var outputRows: [ConcatPlacement.Rows?] = []
    /// For a concatenation of a shared buffer: which inputs it copies, and the buffer's row.
    var concatWrite: ConcatPlacement.Write?
    /// For a pointwise convolution: the batch_norm it applies to its input (`BatchNormPrologue`).
    var prologue: GEMMPrologue?
    /// For a pointwise convolution: each image's gate on its input channels (`ChannelScaleFusion`).
    var inputScales: UnsafeBufferPointer<Float>?
    /// For a depthwise convolution: the pointwise expansion it computes band by band from its input (`ExpansionFusion`).
    var expansion: ExpansionOperands?
    /// For a direct convolution: its data input is NCHW, not the NHWC it computes in (`InputLayoutFusion`).
    var readsChannelsFirst = false
    var constants: [String: TensorData]
    var constantNames: Set<String>
    var context: ExecutionContext
    var prepared: PreparedWeights

    var kernelContext: KernelContext { KernelContext(threads: context.threads) }

    /// Whether `name` is a model constant, even one whose values were released after preparing.
    func isConstant(_ name: String) -> Bool { constantNames.contains(name) }

    /// The index-th input as a buffer of its full extent; throws if absent.
    func input(_ index: Int) throws -> UnsafeBufferPointer<Float> {
        guard index < inputs.count, let pointer = inputs[index] else {
            throw RuntimeError.unsupported(node: node.name, location: node.location, reason: "input \(index) is missing")
        }
        if index < inputRows.count, let rows = inputRows[index] { return UnsafeBufferPointer(start: pointer, count: rows.span) }
        return UnsafeBufferPointer(start: pointer, count: BF16Convolution.slots(inputShapes[index].reduce(1, *),
                                                                                 in: inputStorage[index]))
    }

    /// How input `index` is stored; fp32 when the node leaves it out.
    func storage(ofInput index: Int) -> ActivationStorage { index < inputStorage.count ? inputStorage[index] : .fp32 }

    /// An optional input (a bias): nil when the node leaves it out.
    func optionalInput(_ index: Int) throws -> UnsafeBufferPointer<Float>? {
        guard index < inputs.count, inputs[index] != nil else { return nil }
        return try input(index)
    }

    func output(_ index: Int = 0) throws -> UnsafeMutableBufferPointer<Float> {
        guard index < outputs.count else {
            throw RuntimeError.unsupported(node: node.name, location: node.location, reason: "output \(index) has no buffer")
        }
        if index < outputRows.count, let rows = outputRows[index] {
            return UnsafeMutableBufferPointer(start: outputs[index], count: rows.span)
        }
        return UnsafeMutableBufferPointer(start: outputs[index],
                                          count: BF16Convolution.slots(outputShapes[index].reduce(1, *),
                                                                       in: outputStorage[index]))
    }

    var attributes: AttributeReader { AttributeReader(node: node) }

    /// A step that reads input 0 and writes output 0 with one kernel call: most lowerings.
    func unaryStep(_ body: @escaping (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, KernelContext) throws -> Void) throws -> Step {
        let (input, output, context) = (try input(0), try output(), kernelContext)
        return Step(node: node.name, op: node.op) { _ in try body(input, output, context) }
    }

    /// Runs `body`, reporting a weight that cannot be prepared as this node's error.
    func reportingAgainstNode<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as PreparationError { throw unsupported(error.reason) }
    }

    func unsupported(_ reason: String) -> RuntimeError {
        .unsupported(node: node.name, location: node.location, reason: reason)
    }
}

/// The schedule of a graph for one binding of its symbolic dimensions: topological order,
/// arena placement of every intermediate, and the prepared steps.
final class ExecutionPlan {
    let bindings: [String: Int]
    let steps: [Step]
    let memory: MemoryPlan
    let arena: UnsafeMutablePointer<Float>
    /// The block the arena lies in (the arena starts at its first cache line).
    private let arenaAllocation: UnsafeMutableRawPointer
    let scratch: UnsafeMutableBufferPointer<Float>
    /// Where each graph input is copied before the steps run, and where each output is read.
    let inputSlots: [String: (offset: Int, shape: [Int])]
    let outputSlots: [(name: String, pointer: UnsafePointer<Float>, shape: [Int])]

    init(bindings: [String: Int], steps: [Step], memory: MemoryPlan, arena: UnsafeMutablePointer<Float>,
         arenaAllocation: UnsafeMutableRawPointer, scratch: UnsafeMutableBufferPointer<Float>,
         inputSlots: [String: (offset: Int, shape: [Int])],
         outputSlots: [(name: String, pointer: UnsafePointer<Float>, shape: [Int])]) {
        self.bindings = bindings
        self.steps = steps
        self.memory = memory
        self.arena = arena
        self.arenaAllocation = arenaAllocation
        self.scratch = scratch
        self.inputSlots = inputSlots
        self.outputSlots = outputSlots
    }

    deinit {
        free(arenaAllocation)
        scratch.deallocate()
    }

    /// Bytes the arena takes against the sum of all intermediates allocated separately.
    var plannedBytes: Int { memory.arenaSize * 4 }
    var naiveBytes: Int { memory.naiveSize * 4 }
}
