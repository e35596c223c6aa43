import KeelIR
import KeelPasses
import XCTest

/// Shapes and parameter counts from Keras's VGG16 `model.summary()` and hand derivation.
final class ShapeInferenceTests: XCTestCase {
    private func inferred(_ builder: KerasGraphBuilder) throws -> Graph {
        var builder = builder
        builder.output("features")
        return try ShapeInference().run(builder.graph).graph
    }

    func testVGG16LayerShapes() throws {
        let graph = try inferred(.vgg16())
        let expected: [(String, Shape)] = [
            ("block1_conv1", ["N", 224, 224, 64]), ("block1_conv2", ["N", 224, 224, 64]), ("block1_pool", ["N", 112, 112, 64]),
            ("block2_conv1", ["N", 112, 112, 128]), ("block2_conv2", ["N", 112, 112, 128]), ("block2_pool", ["N", 56, 56, 128]),
            ("block3_conv1", ["N", 56, 56, 256]), ("block3_conv2", ["N", 56, 56, 256]), ("block3_conv3", ["N", 56, 56, 256]),
            ("block3_pool", ["N", 28, 28, 256]),
            ("block4_conv1", ["N", 28, 28, 512]), ("block4_conv2", ["N", 28, 28, 512]), ("block4_conv3", ["N", 28, 28, 512]),
            ("block4_pool", ["N", 14, 14, 512]),
            ("block5_conv1", ["N", 14, 14, 512]), ("block5_conv2", ["N", 14, 14, 512]), ("block5_conv3", ["N", 14, 14, 512]),
            ("block5_pool", ["N", 7, 7, 512]),
        ]
        XCTAssertEqual(graph.nodes.map(\.name), expected.map(\.0))
        for (name, shape) in expected {
            XCTAssertEqual(graph.valueTypes[name], TensorType(.float32, shape), name)
        }
        try verify(graph)
    }

    func testVGG16Summary() throws {
        let summary = ModelSummary(try inferred(.vgg16()))
        XCTAssertEqual(summary.totalParameters, 14_714_688)
        XCTAssertEqual(summary.trainableParameters, 0)
        XCTAssertEqual(summary.nonTrainableParameters, 14_714_688)
        let rows = Dictionary(uniqueKeysWithValues: summary.rows.map { ($0.name, $0) })
        // Keras: 3·3·3·64 + 64, 3·3·64·64 + 64, 3·3·512·512 + 512
        XCTAssertEqual(rows["block1_conv1"]?.parameters, 1_792)
        XCTAssertEqual(rows["block1_conv2"]?.parameters, 36_928)
        XCTAssertEqual(rows["block5_conv3"]?.parameters, 2_359_808)
        XCTAssertEqual(rows["block5_pool"]?.parameters, 0)
        XCTAssertEqual(rows["input"]?.op, "input")
        // 224·224·3·3·3·64
        XCTAssertEqual(rows["block1_conv1"]?.macsPerImage, 86_704_128)
        // Σ outH·outW·9·cin·cout over the 13 convolutions (VGG16's published ~15.35 GMACs).
        XCTAssertEqual(summary.totalMACsPerImage, 15_346_630_656)
    }

    func testViTHead() throws {
        var builder = KerasGraphBuilder.vgg16()
        builder.vitHead()
        let graph = try inferred(builder)
        XCTAssertEqual(graph.valueTypes["patch_embed"], TensorType(.float32, ["N", 7, 7, 768]))
        XCTAssertEqual(graph.valueTypes["tokens"], TensorType(.float32, ["N", 49, 768]))
        XCTAssertEqual(graph.valueTypes["token_norm"], TensorType(.float32, ["N", 49, 768]))
        let summary = ModelSummary(graph)
        let rows = Dictionary(uniqueKeysWithValues: summary.rows.map { ($0.name, $0) })
        XCTAssertEqual(rows["patch_embed"]?.parameters, 393_984)   // 512·768 + 768
        XCTAssertEqual(rows["token_norm"]?.parameters, 1_536)      // 2·768
        XCTAssertEqual(rows["patch_embed"]?.macsPerImage, 19_267_584)  // 7·7·512·768
        XCTAssertEqual(summary.totalParameters, 14_714_688 + 393_984 + 1_536)
        XCTAssertEqual(summary.trainableParameters, 393_984 + 1_536)
    }

    func testDenseHead() throws {
        var builder = KerasGraphBuilder.vgg16()
        builder.denseHead()
        let graph = try inferred(builder)
        XCTAssertEqual(graph.valueTypes["flatten"], TensorType(.float32, ["N", 25088]))
        XCTAssertEqual(graph.valueTypes["predictions"], TensorType(.float32, ["N", 10]))
        let summary = ModelSummary(graph)
        let rows = Dictionary(uniqueKeysWithValues: summary.rows.map { ($0.name, $0) })
        XCTAssertEqual(rows["fc1"]?.parameters, 6_422_784)        // 25,088·256 + 256
        XCTAssertEqual(rows["bn"]?.parameters, 1_024)             // 4·256
        XCTAssertEqual(rows["bn"]?.trainableParameters, 512)      // gamma, beta
        XCTAssertEqual(rows["predictions"]?.parameters, 2_570)    // 256·10 + 10
        XCTAssertEqual(rows["fc1"]?.macsPerImage, 6_422_528)      // 25,088·256
        XCTAssertEqual(summary.totalParameters, 21_141_066)
        XCTAssertEqual(summary.trainableParameters, 6_425_866)
        XCTAssertEqual(summary.nonTrainableParameters, 14_715_200)
    }

    func testWrongInputSizeIsReportedAtTheDenseLayer() {
        var builder = KerasGraphBuilder.vgg16(size: 256)
        builder.denseHead()
        builder.output("predictions")
        XCTAssertThrowsError(try ShapeInference().run(builder.graph)) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline,
                           "vgg16.keel:21:1: error: dense 'fc1' expects 25,088 input features on the last axis but its input 'flatten' is [N,32768]")
        }
    }

    func testWrongChannelCountIsReportedAtTheFirstConv() {
        var builder = KerasGraphBuilder.vgg16(channels: 4)
        builder.graph.constants["block1_conv1/kernel"]?.type = TensorType(.float32, [3, 3, 3, 64])
        builder.output("features")
        XCTAssertThrowsError(try ShapeInference().run(builder.graph)) { error in
            XCTAssertEqual((error as? Diagnostic)?.message,
                           "conv2d 'block1_conv1' kernel is for 3 input channels but input 'input' has 4: [N,224,224,4]")
        }
    }

    func testUndefinedValue() {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4])
        builder.layer("act", .relu, inputs: ["missing"])
        XCTAssertThrowsError(try ShapeInference().run(builder.graph)) { error in
            XCTAssertEqual((error as? Diagnostic)?.message, "relu 'act' reads undefined value 'missing'")
        }
    }

    func testReinfersStaleTypesAndReportsAStatistic() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 4])
        builder.layer("act", .relu)
        builder.output("y")
        var graph = builder.graph
        graph.valueTypes["act"] = TensorType(.float32, [1])
        let result = try ShapeInference().run(graph)
        XCTAssertEqual(result.graph.valueTypes["act"], TensorType(.float32, ["N", 4]))
        XCTAssertEqual(result.statistic, "typed 2 values over 1 nodes; y f32[N,4]")
        let (_, log) = try runPasses([ShapeInference()], on: graph)
        XCTAssertEqual(log, ["shape-inference: typed 2 values over 1 nodes; y f32[N,4]"])
    }

    /// Types left out (`?`) come back inferred: a stride-2 same conv halves 8×8 (ceil), global
    /// pooling drops H and W.
    func testGoldenTypesAreInferred() throws {
        try assertRewrite(ShapeInference(), """
            graph g
            input %x: f32[N,7,8,3] nhwc
            const @c/kernel: f32[3,3,3,4] kernel
            %c = conv2d(%x, @c/kernel) {padding="same", strides=[2,2]} : ?
            %p = global_avg_pool2d(%c) : ?
            output y = %p
            """, """
            graph g
            input %x: f32[N,7,8,3] nhwc
            const @c/kernel: f32[3,3,3,4] kernel
            %c = conv2d(%x, @c/kernel) {padding="same", strides=[2,2]} : f32[N,4,4,4]
            %p = global_avg_pool2d(%c) : f32[N,4]
            output y = %p

            """, typedInput: false)
    }

}

final class ShapeInferenceChecksTests: XCTestCase {
    func testMisspeltAttributeIsAnError() {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 8, 8, 3])
        builder.layer("pool", .maxPool2d, ["stride": .ints([1, 1])])
        builder.output("y")
        XCTAssertThrowsError(try ShapeInference().run(builder.graph)) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline,
                           "g.keel:2:1: error: max_pool2d 'pool' has unknown attribute 'stride'; it takes layout, pool_size, strides, dilations, padding, pads, ceil_mode")
        }
    }
}
