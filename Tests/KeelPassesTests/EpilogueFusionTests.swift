import KeelIR
import KeelPasses
import XCTest

final class EpilogueFusionTests: XCTestCase {
    func testBiasAddAndReluFuseIntoConv() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 4])], ["padding": .string("same")])
        builder.literal("offset", [4])
        builder.layer("bias_add", .add, inputs: ["conv", "offset"])
        builder.layer("relu", .relu)
        builder.layer("pool", .maxPool2d)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .maxPool2d])
        let conv = try XCTUnwrap(result.graph.node(named: "conv"))
        XCTAssertEqual(conv.attributes["activation"], .string("relu"))
        XCTAssertEqual(conv.inputs, ["input", "conv/kernel", "conv/bias"])
        XCTAssertEqual(conv.locations.map(\.line), [2, 3, 4])
        XCTAssertEqual(result.graph.node(named: "pool")?.inputs, ["conv"])
        try assertEquivalent(graph, result.graph)
    }

    func testActivationsWithParametersFuseIntoDense() throws {
        let cases: [(OpKind, String, [String: AttributeValue])] = [
            (.leakyRelu, "leaky_relu", ["alpha": .float(0.1)]), (.clip, "clip", ["min": .float(-0.2), "max": .float(0.3)]),
            (.sigmoid, "sigmoid", [:]), (.tanh, "tanh", [:]), (.softmax, "softmax", [:]),
        ]
        for (op, activation, attributes) in cases {
            var builder = KerasGraphBuilder(name: "g", shape: ["N", 6], layout: nil)
            builder.layer("dense", .dense, parameters: [(.kernel, [6, 5]), (.bias, [5])])
            builder.layer("act", op, attributes)
            builder.output("y")
            let graph = try prepared(builder)
            let result = try optimized(graph, [EpilogueFusion()])
            XCTAssertEqual(result.graph.ops, [.dense], "\(op)")
            let dense = try XCTUnwrap(result.graph.node(named: "dense"))
            XCTAssertEqual(dense.attributes["activation"], .string(activation))
            for (name, value) in attributes { XCTAssertEqual(dense.attributes[name], value, "\(op) \(name)") }
            XCTAssertEqual(dense.outputs, ["act"], "graph output value name preserved")
            try assertEquivalent(graph, result.graph)
        }
    }

    func testKeptWhenIntermediateIsAGraphOutput() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6], layout: nil)
        builder.layer("dense", .dense, parameters: [(.kernel, [6, 5])])
        builder.layer("relu", .relu)
        builder.output("y")
        builder.output("features", value: "dense")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, ["epilogue-fusion: kept 'relu': its input 'dense' is a graph output"])
    }

    func testKeptWhenProducerAlreadyHasAnActivation() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 3, 2])], ["activation": .string("relu")])
        builder.layer("act", .sigmoid)
        builder.output("y")
        let result = try optimized(try prepared(builder), [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .sigmoid])
        XCTAssertEqual(result.explanations, ["epilogue-fusion: kept 'act': 'conv' already applies activation \"relu\""])
    }

    /// A residual add of two computed values is not a bias: nothing to fuse, nothing to explain.
    func testResidualAddIsLeftAlone() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 3, 3])])
        builder.layer("sum", .add, inputs: ["conv", "input"])
        builder.layer("relu", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph, graph)
        XCTAssertEqual(result.explanations, [])
    }

    /// A bias add leaves the kernel alone, so a kernel shared with another layer does not block it.
    func testBiasAddFusesEvenWhenTheKernelIsShared() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6], layout: nil)
        builder.layer("dense", .dense, parameters: [(.kernel, [6, 5])])
        builder.literal("offset", [5])
        builder.layer("biased", .add, inputs: ["dense", "offset"])
        builder.layer("twin", .dense, inputs: ["input", "dense/kernel"])
        builder.layer("sum", .add, inputs: ["biased", "twin"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.dense, .dense, .add])
        XCTAssertEqual(result.graph.constants["dense/kernel"]?.data, graph.constants["dense/kernel"]?.data, "kernel untouched")
        XCTAssertEqual(result.log, ["epilogue-fusion: 1 ops fused, 1 nodes removed, 20 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }
}
