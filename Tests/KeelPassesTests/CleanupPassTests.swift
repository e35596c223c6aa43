import KeelIR
import KeelPasses
import XCTest

/// Constant folding, identity removal and dead-code elimination: the -O1 passes that never
/// change a learned weight.
final class CleanupPassTests: XCTestCase {
    func testConstantSubgraphFoldsIntoOneConstant() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 2, 3], layout: nil)
        builder.literal("a", [3, 2])
        builder.literal("b", [2, 1])
        builder.layer("a_t", .transpose, inputs: ["a"], ["perm": .ints([1, 0])])
        builder.layer("scaled", .mul, inputs: ["a_t", "b"])
        builder.layer("shifted", .add, inputs: ["input", "scaled"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [ConstantFolding(), DeadCodeElimination()])
        XCTAssertEqual(result.graph.ops, [.add])
        XCTAssertEqual(result.graph.node(named: "shifted")?.inputs, ["input", "scaled"])
        XCTAssertEqual(result.graph.constants.keys.sorted(), ["scaled"])
        // scaled[i][j] = a[j][i] · b[i], computed here by hand from the bound values.
        let a = try XCTUnwrap(graph.constants["a"]?.data?.floats())
        let b = try XCTUnwrap(graph.constants["b"]?.data?.floats())
        let expected = (0..<2).flatMap { i in (0..<3).map { j in a[j * 2 + i] * b[i] } }
        XCTAssertEqual(result.graph.constants["scaled"]?.type, TensorType(.float32, [2, 3]))
        XCTAssertEqual(result.graph.constants["scaled"]?.data?.floats(), expected)
        XCTAssertEqual(result.log.first, "constant-folding: 2 nodes folded into constants, 2 nodes removed, 48 weight bytes changed")
        try assertEquivalent(graph, result.graph)
    }

    /// A product of constants (Swin V2's relative-position MLP on its coordinate table) folds: a
    /// dense with bias, a batched matmul with a broadcast left operand; values derived here.
    func testConstantProductsFold() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3, 2], layout: nil)
        builder.literal("table", [3, 2])
        builder.literal("kernel", [2, 4])
        builder.literal("bias", [4])
        builder.literal("left", [1, 3, 3])
        builder.layer("mlp", .dense, inputs: ["table", "kernel", "bias"])
        builder.layer("mixed", .matmul, inputs: ["left", "mlp"])
        builder.layer("sum", .add, inputs: ["input", "table"])
        builder.layer("y_in", .matmul, inputs: ["sum", "kernel"])
        builder.layer("shifted", .add, inputs: ["y_in", "mixed"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [ConstantFolding(), DeadCodeElimination()])
        XCTAssertEqual(result.graph.ops, [.add, .matmul, .add])
        let value = { (name: String) in graph.constants[name]?.data?.floats() ?? [] }
        let (table, kernel, bias, left) = (value("table"), value("kernel"), value("bias"), value("left"))
        /// Σₖ a[row·depth + k]·b[k·columns + column], row-major.
        func product(_ a: [Float], _ b: [Float], rows: Int, depth: Int, columns: Int) -> [Float] {
            var result = [Float](repeating: 0, count: rows * columns)
            for row in 0..<rows {
                for column in 0..<columns {
                    for k in 0..<depth { result[row * columns + column] += a[row * depth + k] * b[k * columns + column] }
                }
            }
            return result
        }
        let mlp = zip(product(table, kernel, rows: 3, depth: 2, columns: 4), Array(repeating: bias, count: 3).flatMap { $0 })
            .map { $0 + $1 }
        let mixed = product(left, mlp, rows: 3, depth: 3, columns: 4)
        XCTAssertEqual(result.graph.constants["mixed"]?.type, TensorType(.float32, [1, 3, 4]))
        let folded = try XCTUnwrap(result.graph.constants["mixed"]?.data?.floats())
        for (got, want) in zip(folded, mixed) { XCTAssertEqual(got, want, accuracy: 1e-5) }
        try assertEquivalent(graph, result.graph)
    }

    func testIntegerShapeArithmeticFoldsExactly() throws {
        var graph = Graph(name: "g", inputs: [GraphInput(name: "x", type: TensorType(.float32, [2, 6]))])
        graph.constants["dims"] = Constant(name: "dims", type: TensorType(.int64, [2]), role: .literal, trainable: false,
                                           data: TensorData(int64s: [7, -3], shape: [2]))
        graph.constants["two"] = Constant(name: "two", type: TensorType(.int64, [1]), role: .literal, trainable: false,
                                          data: TensorData(int64s: [2], shape: [1]))
        graph.nodes = [Node(name: "half", op: .div, inputs: ["dims", "two"], outputs: ["half"]),
                       Node(name: "negated", op: .neg, inputs: ["half"], outputs: ["negated"]),
                       Node(name: "relu", op: .relu, inputs: ["x"], outputs: ["relu"])]
        graph.outputs = [GraphOutput(name: "y", value: "relu"), GraphOutput(name: "negated", value: "negated")]
        let result = try optimized(try ShapeInference().run(graph).graph, [ConstantFolding()])
        XCTAssertEqual(result.graph.ops, [.neg, .relu])
        XCTAssertEqual(result.graph.constants["half"]?.data?.int64s(), [3, -1], "integer division truncates toward zero")
        XCTAssertEqual(result.explanations, ["constant-folding: kept 'negated': its output is a graph output, which the runtime reads from a node"])
    }

    func testFoldingWaitsForWeights() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 3], layout: nil)
        builder.literal("c", [3])
        builder.layer("neg", .neg, inputs: ["c"])
        builder.layer("sum", .add, inputs: ["input", "neg"])
        builder.output("y")
        let graph = try ShapeInference().run(builder.graph).graph
        let result = try optimized(graph, [ConstantFolding()])
        XCTAssertEqual(result.graph.ops, [.neg, .add])
        XCTAssertEqual(result.explanations, ["constant-folding: kept 'neg': an input constant has no data (bind weights first)"])
    }

    func testIdentityAndDropoutAreRemovedAndOutputNamesKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4], layout: nil)
        builder.layer("dense", .dense, parameters: [(.kernel, [4, 3])])
        builder.layer("dropout", .dropout, ["rate": .float(0.5)])
        builder.layer("same", .identity)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [IdentityRemoval()])
        XCTAssertEqual(result.graph.ops, [.dense])
        XCTAssertEqual(result.graph.node(named: "dense")?.outputs, ["same"])
        XCTAssertEqual(result.graph.outputs, [GraphOutput(name: "y", value: "same")])
        try assertEquivalent(graph, result.graph)
    }

    /// Pads of nothing, slices that keep every element in order and transposes that keep every
    /// axis go; a whole-axis slice with step -1 (the same shape, reversed), a crop and a real
    /// transpose stay.
    func testNoOpPadsSlicesAndTransposesAreRemoved() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 5], layout: nil)
        builder.layer("padded", .pad, ["pads": .ints([0, 0, 0, 0, 0, 0]), "value": .float(0)])
        builder.layer("whole_rows", .slice, ["starts": .ints([0]), "ends": .ints([6]), "axes": .ints([1])])
        builder.layer("whole_batch", .slice, ["starts": .ints([0]), "ends": .ints([Int.max]), "axes": .ints([0]),
                                              "steps": .ints([1])])
        builder.layer("reversed", .slice, ["starts": .ints([-1]), "ends": .ints([Int.min]), "axes": .ints([2]),
                                           "steps": .ints([-1])])
        builder.layer("cropped", .slice, ["starts": .ints([1]), "ends": .ints([6]), "axes": .ints([1])])
        builder.layer("in_order", .transpose, ["perm": .ints([0, 1, 2])])
        builder.layer("swapped", .transpose, ["perm": .ints([0, 2, 1])])
        builder.layer("relu", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [IdentityRemoval()])
        XCTAssertEqual(result.graph.nodes.map(\.name), ["reversed", "cropped", "swapped", "relu"])
        XCTAssertEqual(result.graph.node(named: "reversed")?.inputs, ["input"])
        XCTAssertEqual(result.graph.node(named: "relu")?.inputs, ["swapped"])
        XCTAssertEqual(result.log, ["identity-removal: 4 no-op nodes removed, 4 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }

    func testIdentityOfAGraphInputThatIsAnOutputIsKept() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4], layout: nil)
        builder.layer("copy", .identity)
        builder.output("y")
        let result = try optimized(try prepared(builder), [IdentityRemoval()])
        XCTAssertEqual(result.graph.ops, [.identity])
        XCTAssertEqual(result.explanations, ["identity-removal: kept 'copy': graph output 'copy' would have to take the name of 'input'"])
    }

    func testDeadBranchesAndUnusedConstantsAreRemoved() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4], layout: nil)
        builder.layer("used", .dense, parameters: [(.kernel, [4, 3])])
        builder.layer("unused", .dense, parameters: [(.kernel, [4, 2])], inputs: ["input"])
        builder.layer("unused_relu", .relu)
        builder.literal("orphan", [5])
        builder.output("y", value: "used")
        let graph = try prepared(builder)
        let result = try optimized(graph, [DeadCodeElimination()])
        XCTAssertEqual(result.graph.nodes.map(\.name), ["used"])
        XCTAssertEqual(result.graph.constants.keys.sorted(), ["used/kernel"])
        XCTAssertEqual(result.log, ["dead-code-elimination: 2 unused constants removed, 2 nodes removed, 52 weight bytes changed"])
    }
}
