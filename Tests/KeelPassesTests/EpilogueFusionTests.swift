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
            (.sigmoid, "sigmoid", [:]), (.tanh, "tanh", [:]), (.softmax, "softmax", [:]), (.swish, "swish", [:]),
            (.hardSwish, "hard_swish", [:]), (.hardSigmoid, "hard_sigmoid", ["alpha": .float(0.25), "beta": .float(0.4)]),
            (.gelu, "gelu", [:]),
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

    /// GELU's tanh form fuses as its own epilogue, into dense and into conv2d (every conv kernel
    /// applies it: MaxViT's MBConv convolutions); softmax still fuses into dense only.
    func testGeluFormsFuseIntoDenseAndConvolutions() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6], layout: nil)
        builder.layer("dense", .dense, parameters: [(.kernel, [6, 5]), (.bias, [5])])
        builder.layer("act", .gelu, ["approximate": .string("tanh")])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.dense])
        XCTAssertEqual(result.graph.node(named: "dense")?.attributes["activation"], .string("gelu_tanh"))
        try assertEquivalent(graph, result.graph)

        var convolution = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 3])
        convolution.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 4])])
        convolution.layer("act", .gelu)
        convolution.output("y")
        let convolutionGraph = try prepared(convolution)
        let fused = try optimized(convolutionGraph, [EpilogueFusion()])
        XCTAssertEqual(fused.graph.ops, [.conv2d])
        XCTAssertEqual(fused.graph.node(named: "conv")?.attributes["activation"], .string("gelu"))
        try assertEquivalent(convolutionGraph, fused.graph)

        var softmax = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 3])
        softmax.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 4])])
        softmax.layer("act", .softmax)
        softmax.output("y")
        let kept = try optimized(try prepared(softmax), [EpilogueFusion()])
        XCTAssertEqual(kept.graph.ops, [.conv2d, .softmax])
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

    /// DenseNet's BN → ReLU after a concatenation: no producer can take the BN, so the ReLU goes
    /// into the batch_norm, which applies it while the values are in cache; a bias add or shortcut
    /// after a batch_norm is not an epilogue it has, and stays.
    func testActivationAfterAStandaloneBatchNormFusesIntoIt() throws {
        let bn: [(ParameterRole, Shape)] = [(.gamma, [7]), (.beta, [7]), (.movingMean, [7]), (.movingVariance, [7])]
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 3, 4])])
        builder.layer("joined", .concat, inputs: ["input", "conv"], ["axis": .int(-1)])
        builder.layer("bn", .batchNorm, parameters: bn)
        builder.layer("relu", .relu)
        builder.layer("bn2", .batchNorm, parameters: bn, inputs: ["joined"])
        builder.layer("capped", .clip, ["min": .float(-0.5), "max": .float(0.5)])
        builder.layer("sum", .add, inputs: ["relu", "capped"])
        builder.layer("bn3", .batchNorm, parameters: bn)
        builder.layer("shortcut", .add, inputs: ["bn3", "joined"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .concat, .batchNorm, .batchNorm, .add, .batchNorm, .add])
        XCTAssertEqual(result.graph.node(named: "bn")?.attributes["activation"], .string("relu"))
        XCTAssertEqual(try result.graph.node(named: "bn2")?.fusedActivation, .clip(min: -0.5, max: 0.5))
        XCTAssertNil(result.graph.node(named: "bn3")?.attributes["activation"])
        XCTAssertEqual(result.graph.node(named: "bn3")?.inputs.count, 5, "no residual input")
        try assertEquivalent(graph, result.graph)
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

    /// A shortcut add of a same-shape value becomes the conv's residual input, and the ReLU after
    /// it still fuses (the kernel adds the residual before the activation).
    func testResidualAddAndReluFuseIntoConv() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 3])], ["padding": .string("same")])
        builder.layer("sum", .add, inputs: ["input", "conv"])
        builder.layer("relu", .relu)
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d])
        let conv = try XCTUnwrap(result.graph.node(named: "conv"))
        XCTAssertEqual(conv.inputs, ["input", "conv/kernel", "", "input"])
        XCTAssertEqual(conv.attributes["activation"], .string("relu"))
        try assertEquivalent(graph, result.graph)
    }

    /// A shortcut that broadcasts (a per-image value) is not a residual.
    func testBroadcastAddIsNotAResidual() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4, 4, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [1, 1, 3, 3])])
        builder.layer("pooled", .globalAvgPool2d, inputs: ["input"], ["keepdims": .bool(true)])
        builder.layer("sum", .add, inputs: ["conv", "pooled"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d, .globalAvgPool2d, .add])
        XCTAssertEqual(result.explanations.count, 1)
    }

    /// y·sigmoid(y), as tf2onnx and PyTorch write swish, becomes the conv's activation.
    func testSwishPatternFusesIntoConv() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 5, 5, 3])
        builder.layer("conv", .conv2d, parameters: [(.kernel, [3, 3, 3, 4]), (.bias, [4])], ["padding": .string("same")])
        builder.layer("gate", .sigmoid, inputs: ["conv"])
        builder.layer("swish", .mul, inputs: ["conv", "gate"])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [EpilogueFusion()])
        XCTAssertEqual(result.graph.ops, [.conv2d])
        XCTAssertEqual(result.graph.node(named: "conv")?.attributes["activation"], .string("swish"))
        XCTAssertEqual(result.log, ["epilogue-fusion: 1 ops fused, 2 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
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
        // The sum becomes the residual of 'twin', whose shortcut 'dense' is computed before it.
        XCTAssertEqual(result.graph.ops, [.dense, .dense])
        XCTAssertEqual(result.graph.node(named: "twin")?.inputs, ["input", "dense/kernel", "", "dense"])
        XCTAssertEqual(result.graph.constants["dense/kernel"]?.data, graph.constants["dense/kernel"]?.data, "kernel untouched")
        XCTAssertEqual(result.log, ["epilogue-fusion: 2 ops fused, 2 nodes removed, 20 weight bytes changed"])
        try assertEquivalent(graph, result.graph)
    }
}
