import KeelIR
import KeelPasses
import KeelRuntime
import XCTest

extension KerasGraphBuilder {
    /// Adds a literal constant (per-channel scales, shifts) under `name`.
    mutating func literal(_ name: String, _ shape: Shape) {
        graph.constants[name] = Constant(name: name, type: TensorType(.float32, shape), role: .literal, trainable: false)
    }

    /// Declares `value` (default: the last layer) as the graph output `name`.
    mutating func output(_ name: String, value: String) {
        graph.outputs.append(GraphOutput(name: name, value: value))
    }
}

/// Weights for equivalence tests: Keras's initialisers for kernels, and non-trivial values for
/// everything a fold rewrites (biases, BN statistics, literals), so folding is really exercised.
/// `where` limits binding to some constants (structural tests on full-size graphs skip VGG16's).
func bindTestWeights(_ graph: Graph, seed: UInt64 = 7, where include: (Constant) -> Bool = { _ in true }) -> Graph {
    var result = graph
    for name in graph.constants.keys.sorted() {
        guard let constant = graph.constants[name], constant.data == nil, include(constant),
              let shape = constant.type.shape.knownExtents else { continue }
        if constant.role == .kernel {
            result.constants[name]?.data = WeightInitializer.initialize(constant, seed: seed)
            continue
        }
        // A stream per constant name, stable across runs.
        var generator = SplitMix64(seed: seed ^ name.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 })
        let (low, high) = constant.role == .gamma || constant.role == .movingVariance ? (0.5, 1.5) : (-0.5, 0.5)
        let values = (0..<shape.reduce(1, *)).map { _ in Float(low + (high - low) * generator.nextUnit()) }
        result.constants[name]?.data = TensorData(floats: values, shape: shape)
    }
    return result
}

/// Shape inference, then test weights: what a pass sees after `keel compile` has bound `--seed`.
func prepared(_ builder: KerasGraphBuilder) throws -> Graph {
    bindTestWeights(try ShapeInference().run(builder.graph).graph)
}

/// Runs passes through the pipeline, which verifies after each one and names the pass that broke it.
func optimized(_ graph: Graph, _ passes: [any Pass]) throws -> PipelineResult {
    try PassPipeline(passes: passes).run(graph, verifyAfterEach: true)
}

/// Random inputs for every graph input with the batch symbol bound to `batch`.
func randomInputs(for graph: Graph, batch: Int = 2, seed: UInt64 = 11) throws -> [String: Tensor] {
    var generator = SplitMix64(seed: seed)
    var inputs: [String: Tensor] = [:]
    for input in graph.inputs {
        guard let shape = input.type.shape.binding(["N": batch]).knownExtents else { continue }
        let values = (0..<shape.reduce(1, *)).map { _ in Float(generator.nextUnit() * 2 - 1) }
        inputs[input.name] = try Tensor(shape: shape, values: values)
    }
    return inputs
}

/// Runs both graphs on the same random inputs and checks every output agrees within
/// `tolerance` relative to the largest reference magnitude.
func assertEquivalent(_ reference: Graph, _ candidate: Graph, batch: Int = 2, tolerance: Float = 1e-5,
                      file: StaticString = #filePath, line: UInt = #line) throws {
    let inputs = try randomInputs(for: reference, batch: batch)
    let expected = try CompiledModel(graph: reference, context: ExecutionContext(threads: 2)).run(inputs)
    let actual = try CompiledModel(graph: candidate, context: ExecutionContext(threads: 2)).run(inputs)
    XCTAssertEqual(Set(expected.keys), Set(actual.keys), "outputs differ", file: file, line: line)
    for (name, tensor) in expected {
        guard let other = actual[name] else { continue }
        XCTAssertEqual(tensor.shape, other.shape, "output '\(name)' shape", file: file, line: line)
        let scale = max(tensor.values.map(abs).max() ?? 0, 1e-6)
        let error = zip(tensor.values, other.values).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(error / scale, tolerance, "output '\(name)': max error \(error) at scale \(scale)", file: file, line: line)
        XCTAssertGreaterThan(tensor.values.map(abs).max() ?? 0, 0, "output '\(name)' is all zeros; the test proves little", file: file, line: line)
    }
}

extension Graph {
    var ops: [OpKind] { nodes.map(\.op) }
    func count(_ op: OpKind) -> Int { nodes.filter { $0.op == op }.count }
}

extension KerasGraphBuilder {
    /// VGG16's layer structure and names with every channel count divided by `divisor`, for
    /// numeric checks that run in a debug build in well under a second.
    static func narrowVGG16(size: Int, divisor: Int) -> KerasGraphBuilder {
        var builder = KerasGraphBuilder(name: "vgg16", shape: ["N", .known(size), .known(size), 3])
        var inputChannels = 3
        for (block, filters) in [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]].enumerated() {
            for (index, full) in filters.enumerated() {
                let count = full / divisor
                builder.layer("block\(block + 1)_conv\(index + 1)", .conv2d,
                              parameters: [(.kernel, [3, 3, .known(inputChannels), .known(count)]), (.bias, [.known(count)])],
                              trainable: false, ["padding": .string("same"), "activation": .string("relu")])
                inputChannels = count
            }
            builder.layer("block\(block + 1)_pool", .maxPool2d)
        }
        return builder
    }
}

/// A pass as IR text in, IR text out (the printer's form, parsed by `parseIR`), with the verifier
/// run on both sides. `bindWeights` gives the parsed constants test values first (for passes that
/// rewrite weights); `typedInput: false` lets the input leave types out (`: ?`, for shape inference).
/// Expected texts are written by hand from the pass's contract (spec/passes.md).
func assertRewrite(_ pass: any Pass, _ input: String, _ expected: String, bindWeights: Bool = false,
                   typedInput: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws {
    var graph = try parseIR(input, file: "in.ir")
    try verify(graph, requiringTypes: typedInput)
    if bindWeights { graph = bindTestWeights(graph) }
    let result = try pass.run(graph)
    try verify(result.graph)
    XCTAssertEqual(printIR(result.graph), expected, "\(pass.name)", file: file, line: line)
}
