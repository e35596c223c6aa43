import XCTest
import KeelIR
import KeelPasses
@testable import KeelFormat

/// The graphs in graphs/ against Keras: layer names, output shapes and parameter counts as
/// `model.summary()` prints them for keras.applications.VGG16 and the seed article's heads.
final class GraphTests: XCTestCase {
    static let graphNames = ["vgg16.keel", "vgg16_top.keel", "vgg16_resnet_head.keel", "vgg16_vit_head.keel", "vgg16_two_heads.keel"]

    private func load(_ name: String) throws -> Graph { try loadKeelGraph(path: TestPaths.graph(name)) }

    /// Keras's VGG16(include_top=False) summary: (layer, output shape without the batch, params).
    static let vgg16Layers: [(String, [Int], Int)] = [
        ("block1_conv1", [224, 224, 64], 1_792), ("block1_conv2", [224, 224, 64], 36_928), ("block1_pool", [112, 112, 64], 0),
        ("block2_conv1", [112, 112, 128], 73_856), ("block2_conv2", [112, 112, 128], 147_584), ("block2_pool", [56, 56, 128], 0),
        ("block3_conv1", [56, 56, 256], 295_168), ("block3_conv2", [56, 56, 256], 590_080), ("block3_conv3", [56, 56, 256], 590_080),
        ("block3_pool", [28, 28, 256], 0),
        ("block4_conv1", [28, 28, 512], 1_180_160), ("block4_conv2", [28, 28, 512], 2_359_808), ("block4_conv3", [28, 28, 512], 2_359_808),
        ("block4_pool", [14, 14, 512], 0),
        ("block5_conv1", [14, 14, 512], 2_359_808), ("block5_conv2", [14, 14, 512], 2_359_808), ("block5_conv3", [14, 14, 512], 2_359_808),
        ("block5_pool", [7, 7, 512], 0),
    ]

    private func assertLayers(_ graph: Graph, _ expected: [(String, [Int], Int)], file: StaticString = #filePath, line: UInt = #line) {
        let rows = Dictionary(ModelSummary(graph).rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, shape, parameters) in expected {
            XCTAssertEqual(graph.valueTypes[name], TensorType(.float32, Shape([.symbol("N")] + shape.map(Dim.known))), name, file: file, line: line)
            XCTAssertEqual(rows[name]?.parameters, parameters, name, file: file, line: line)
        }
    }

    func testAllGraphsLoadVerifyAndAgreeWithShapeInference() throws {
        for name in Self.graphNames {
            let graph = try load(name)
            XCTAssertNoThrow(try verify(graph), name)
            // Re-running the registry's shape inference from scratch reproduces the types lowering set.
            var untyped = graph
            untyped.valueTypes = [:]
            let inferred = try ShapeInference().run(untyped).graph
            XCTAssertEqual(inferred.valueTypes, graph.valueTypes, name)
        }
    }

    func testVGG16MatchesKeras() throws {
        let graph = try load("vgg16.keel")
        XCTAssertEqual(graph.name, "vgg16")
        XCTAssertEqual(graph.inputs.map(\.name), ["input_1"])
        XCTAssertEqual(graph.inputs[0].type, TensorType(.float32, ["N", 224, 224, 3]))
        XCTAssertEqual(graph.inputs[0].layout, .nhwc)
        XCTAssertEqual(graph.inputs[0].preprocess, "keras_vgg16")
        XCTAssertEqual(graph.nodes.map(\.name), Self.vgg16Layers.map(\.0))
        assertLayers(graph, Self.vgg16Layers)
        XCTAssertEqual(graph.outputs.map(\.value), ["block5_pool"])
        let summary = ModelSummary(graph)
        XCTAssertEqual(summary.totalParameters, 14_714_688)
        XCTAssertEqual(summary.trainableParameters, 14_714_688)
        XCTAssertEqual(graph.constants["block1_conv1/kernel"]?.type, TensorType(.float32, [3, 3, 3, 64]))
        XCTAssertEqual(graph.constants["block5_conv3/bias"]?.role, .bias)
        XCTAssertTrue(graph.constants.values.allSatisfy { $0.data == nil })
    }

    func testVGG16TopMatchesKeras() throws {
        let graph = try load("vgg16_top.keel")
        assertLayers(graph, Self.vgg16Layers + [
            ("flatten", [25_088], 0), ("fc1", [4_096], 102_764_544), ("fc2", [4_096], 16_781_312), ("predictions", [1_000], 4_097_000),
        ])
        XCTAssertEqual(graph.node(named: "predictions")?.attributes["activation"], .string("softmax"))
        XCTAssertEqual(ModelSummary(graph).totalParameters, 138_357_544)
    }

    func testResNetHeadMatchesTheSeedSummary() throws {
        let graph = try load("vgg16_resnet_head.keel")
        assertLayers(graph, Self.vgg16Layers + [
            ("flatten", [25_088], 0), ("dense", [256], 6_422_784), ("batch_normalization", [256], 1_024),
            ("activation", [256], 0), ("dense_1", [10], 2_570),
        ])
        let summary = ModelSummary(graph)
        XCTAssertEqual(summary.totalParameters, 21_141_066)
        XCTAssertEqual(summary.trainableParameters, 6_425_866)
        XCTAssertEqual(summary.nonTrainableParameters, 14_715_200)
        XCTAssertEqual(graph.outputs, [GraphOutput(name: "logits", value: "dense_1",
                                                   location: SourceLocation(file: TestPaths.graph("vgg16_resnet_head.keel"), line: 10, column: 1))])
        XCTAssertEqual(graph.constants["block1_conv1/kernel"]?.trainable, false)
        XCTAssertEqual(graph.constants["dense/kernel"]?.type, TensorType(.float32, [25_088, 256]))
        XCTAssertEqual(graph.constants["batch_normalization/gamma"]?.trainable, true)
        XCTAssertEqual(graph.constants["batch_normalization/moving_variance"]?.trainable, false)
        XCTAssertEqual(graph.constants["batch_normalization/moving_mean"]?.role, .movingMean)
    }

    func testViTHeadMatchesTheSeedSummary() throws {
        let graph = try load("vgg16_vit_head.keel")
        assertLayers(graph, Self.vgg16Layers + [
            ("conv2d", [7, 7, 768], 393_984), ("reshape", [49, 768], 0), ("layer_normalization", [49, 768], 1_536),
        ])
        XCTAssertEqual(graph.node(named: "reshape")?.attributes["shape"], .ints([0, -1, 768]))
        let summary = ModelSummary(graph)
        XCTAssertEqual(summary.totalParameters, 15_110_208)
        XCTAssertEqual(summary.trainableParameters, 395_520)
    }

    func testTwoHeadsShareOneBackbone() throws {
        let graph = try load("vgg16_two_heads.keel")
        XCTAssertEqual(graph.outputs.map(\.name), ["logits", "tokens"])
        XCTAssertEqual(graph.type(of: "dense_1"), TensorType(.float32, ["N", 10]))
        XCTAssertEqual(graph.type(of: "layer_normalization"), TensorType(.float32, ["N", 49, 768]))
        XCTAssertEqual(graph.nodes.filter { $0.name.hasPrefix("block") }.count, 18)
        XCTAssertEqual(graph.node(named: "flatten")?.inputs, ["block5_pool"])
        XCTAssertEqual(graph.node(named: "conv2d")?.inputs.first, "block5_pool")
        // 14,714,688 frozen backbone + 6,426,378 resnet head + 395,520 ViT head.
        let summary = ModelSummary(graph)
        XCTAssertEqual(summary.totalParameters, 21_536_586)
        XCTAssertEqual(summary.trainableParameters, 6_425_866 + 395_520)
    }

    func testLocationsPointAtLayerNames() throws {
        let graph = try load("vgg16_resnet_head.keel")
        let vgg = TestPaths.graph("vgg16.keel")
        let heads = TestPaths.graph("heads.keel")
        XCTAssertEqual(graph.inputs[0].location, SourceLocation(file: vgg, line: 6, column: 7))
        XCTAssertEqual(graph.node(named: "block3_conv2")?.locations, [SourceLocation(file: vgg, line: 11, column: 9)])
        XCTAssertEqual(graph.node(named: "block3_pool")?.locations, [SourceLocation(file: vgg, line: 13, column: 5)])
        XCTAssertEqual(graph.node(named: "dense")?.locations, [SourceLocation(file: heads, line: 8, column: 5)])
        XCTAssertEqual(graph.constants["dense/bias"]?.location, SourceLocation(file: heads, line: 8, column: 5))
    }

    func testNCHWInputsCarryTheirLayout() throws {
        let graph = try parseKeelGraph(source: """
        model m
        input x: f32[N, 3, 32, 32] nchw preprocess: torch
        conv = conv2d(8, 3, strides: 2, padding: same)
        bn = batch_norm()
        pool = global_avg_pool2d()
        logits = dense(10)
        """, path: "m.keel")
        XCTAssertEqual(graph.type(of: "conv"), TensorType(.float32, ["N", 8, 16, 16]))
        XCTAssertEqual(graph.node(named: "conv")?.attributes["layout"], .string("nchw"))
        XCTAssertEqual(graph.node(named: "conv")?.attributes["strides"], .ints([2, 2]))
        XCTAssertEqual(graph.node(named: "bn")?.attributes["axis"], .int(1))
        XCTAssertEqual(graph.constants["bn/gamma"]?.type, TensorType(.float32, [8]))
        XCTAssertEqual(graph.type(of: "pool"), TensorType(.float32, ["N", 8]))
        XCTAssertEqual(graph.type(of: "logits"), TensorType(.float32, ["N", 10]))
        XCTAssertEqual(graph.outputs.map(\.name), ["logits"], "without outputs, the last layer is the output")
    }

    func testBranchesAndMergeLayers() throws {
        let graph = try parseKeelGraph(source: """
        model residual
        input x: f32[N, 16, 16, 8]
        a = conv2d(x, 8, 3, padding: same, use_bias: false)
        b = conv2d(x, 8, 1)
        sum = add(a, b)
        gated = multiply(sum, b)
        joined = concat(a, b, gated)
        act = leaky_relu()
        drop = dropout(0.5)
        pooled = avg_pool2d(3, strides: 2, padding: same)
        three = add(a, b, sum)
        output pooled
        output three
        """, path: "residual.keel")
        XCTAssertEqual(graph.node(named: "a")?.inputs, ["x", "a/kernel"])
        XCTAssertEqual(graph.node(named: "sum")?.op, .add)
        XCTAssertEqual(graph.node(named: "gated")?.op, .mul)
        XCTAssertEqual(graph.node(named: "three")?.op, .sum)
        XCTAssertEqual(graph.type(of: "joined"), TensorType(.float32, ["N", 16, 16, 24]))
        XCTAssertEqual(graph.node(named: "act")?.attributes["alpha"], .float(0.3))
        XCTAssertEqual(graph.type(of: "pooled"), TensorType(.float32, ["N", 8, 8, 24]))
        XCTAssertEqual(graph.node(named: "pooled")?.attributes["strides"], .ints([2, 2]))
        XCTAssertEqual(graph.node(named: "pooled")?.attributes["pool_size"], .ints([3, 3]))
        XCTAssertNoThrow(try verify(graph))
    }
}

extension GraphTests {
    /// The residual example of spec/graph-format.md.
    func testSpecResidualExample() throws {
        let graph = try parseKeelGraph(source: """
        model residual
        input x: f32[N, 56, 56, 64]
        a = conv2d(x, 64, 3, padding: same, activation: relu)
        b = conv2d(64, 3, padding: same)          # reads a
        sum = add(x, b)
        out = relu()                              # reads sum
        """, path: "residual.keel")
        XCTAssertEqual(graph.node(named: "b")?.inputs.first, "a")
        XCTAssertEqual(graph.node(named: "out")?.inputs, ["sum"])
        XCTAssertEqual(graph.type(of: "out"), TensorType(.float32, ["N", 56, 56, 64]))
        // Two 3×3×64×64 convolutions with biases.
        XCTAssertEqual(ModelSummary(graph).totalParameters, 2 * (3 * 3 * 64 * 64 + 64))
    }

    func testForwardReferencesLowerInDependencyOrder() throws {
        let graph = try parseKeelGraph(source: """
        model m
        input x: f32[N, 8]
        sum = add(left, right)
        left = dense(x, 4)
        right = dense(x, 4)
        """, path: "m.keel")
        XCTAssertEqual(graph.nodes.map(\.name), ["left", "right", "sum"])
        XCTAssertEqual(graph.outputs.map(\.value), ["sum"], "the last layer in dependency order is the default output")
    }
}

extension GraphTests {
    func testFrozenSingleLayersAndBlockCalls() throws {
        let graph = try parseKeelGraph(source: """
        model m
        input x: f32[N, 8]
        block pair(prefix) {
            "{prefix}_a" = dense(8)
            "{prefix}_b" = batch_norm()
        }
        frozen first = dense(8)
        frozen pair(p)
        last = dense(2)
        """, path: "m.keel")
        let trainable = Dictionary(graph.constants.values.map { ($0.name, $0.trainable) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(trainable["first/kernel"], false)
        XCTAssertEqual(trainable["p_a/bias"], false)
        XCTAssertEqual(trainable["p_b/gamma"], false)
        XCTAssertEqual(trainable["last/kernel"], true)
        // Trainable: last only (8·2 + 2); everything else is frozen.
        XCTAssertEqual(ModelSummary(graph).trainableParameters, 18)
        XCTAssertEqual(ModelSummary(graph).totalParameters, (8 * 8 + 8) * 2 + 4 * 8 + 18)
    }

    func testMissingRootFileAndMisplacedPreprocessing() {
        XCTAssertThrowsError(try loadKeelGraph(path: "/nonexistent/model.keel")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, "error: cannot read '/nonexistent/model.keel': No such file or directory")
        }
        XCTAssertThrowsError(try parseKeelGraph(source: "model m\ninput x: f32[N, 8] preprocess: torch", path: "m.keel")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, "m.keel:2:32: error: preprocessing applies to rank-4 image inputs; 'x' has rank 2")
        }
    }
}

extension GraphTests {
    func testZeroPaddingMatchesKerasZeroPadding2D() throws {
        let graph = try parseKeelGraph(source: """
        model m
        input x: f32[N, 224, 224, 3]
        conv1_pad = zero_padding2d(3)
        conv1 = conv2d(64, 7, strides: 2)
        asymmetric = zero_padding2d((0, 1, 2, 3))
        """, path: "m.keel")
        XCTAssertEqual(graph.type(of: "conv1_pad"), TensorType(.float32, ["N", 230, 230, 3]))
        XCTAssertEqual(graph.type(of: "conv1"), TensorType(.float32, ["N", 112, 112, 64]))
        XCTAssertEqual(graph.node(named: "asymmetric")?.attributes["pads"], .ints([0, 0, 2, 0, 0, 1, 3, 0]))
        XCTAssertEqual(graph.type(of: "asymmetric"), TensorType(.float32, ["N", 113, 117, 64]))
    }
}
