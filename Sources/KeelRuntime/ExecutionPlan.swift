import KeelIR

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
    var flops: Double
    var run: () -> Void
}

/// Concrete shapes of one node's inputs and outputs once the batch is bound, with the
/// pointers the step reads and writes.
struct StepOperands {
    var node: Node
    var inputShapes: [[Int]]
    var outputShapes: [[Int]]
    var inputs: [UnsafePointer<Float>?]
    var outputs: [UnsafeMutablePointer<Float>]
    var constants: [String: TensorData]
    var context: ExecutionContext

    func input(_ index: Int) -> UnsafePointer<Float>? { index < inputs.count ? inputs[index] : nil }
    func constant(_ index: Int) -> TensorData? {
        index < node.inputs.count ? constants[node.inputs[index]] : nil
    }
}

/// The schedule of a graph for one binding of its symbolic dimensions: topological order,
/// arena placement of every intermediate, and the prepared steps.
final class ExecutionPlan {
    let bindings: [String: Int]
    let steps: [Step]
    let memory: MemoryPlan
    let arena: UnsafeMutablePointer<Float>
    /// Where each graph input is copied before the steps run, and where each output is read.
    let inputSlots: [String: (offset: Int, shape: [Int])]
    let outputSlots: [(name: String, pointer: UnsafePointer<Float>, shape: [Int])]

    init(bindings: [String: Int], steps: [Step], memory: MemoryPlan, arena: UnsafeMutablePointer<Float>,
         inputSlots: [String: (offset: Int, shape: [Int])],
         outputSlots: [(name: String, pointer: UnsafePointer<Float>, shape: [Int])]) {
        self.bindings = bindings
        self.steps = steps
        self.memory = memory
        self.arena = arena
        self.inputSlots = inputSlots
        self.outputSlots = outputSlots
    }

    deinit { arena.deallocate() }

    /// Bytes the arena takes against the sum of all intermediates allocated separately.
    var plannedBytes: Int { memory.arenaSize * 4 }
    var naiveBytes: Int { memory.naiveSize * 4 }
}
