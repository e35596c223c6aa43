import KeelIR
import XCTest

/// Output shapes derived by hand from Keras and ONNX semantics.
final class ShapeFunctionTests: XCTestCase {
    func testConvSameKeepsSymbolicBatch() throws {
        let type = try infer(.conv2d, "block1_conv1",
                             [("input", f32("N", 224, 224, 3)), ("k", f32(3, 3, 3, 64)), ("b", f32(64))],
                             ["padding": .string("same"), "activation": .string("relu")])
        XCTAssertEqual(type, f32("N", 224, 224, 64))
    }

    func testGroupedConvNCHW() throws {
        // depthwise: 32 groups, OIHW kernel [32,1,3,3], valid on 10 -> 8
        let type = try infer(.conv2d, "dw", [("x", f32("N", 32, 10, 10)), ("k", f32(32, 1, 3, 3))],
                             ["layout": .string("nchw"), "kernel_layout": .string("oihw"), "groups": .int(32)])
        XCTAssertEqual(type, f32("N", 32, 8, 8))
    }

    func testDenseAppliesToTheLastAxis() throws {
        let type = try infer(.dense, "proj", [("x", f32("N", 7, 7, 512)), ("k", f32(512, 256)), ("b", f32(256))])
        XCTAssertEqual(type, f32("N", 7, 7, 256))
        let gemm = try infer(.dense, "fc", [("x", f32("N", 512)), ("k", f32(10, 512))], ["weight_layout": .string("out_in")])
        XCTAssertEqual(gemm, f32("N", 10))
    }

    func testReshapeCopiesAndInfers() throws {
        XCTAssertEqual(try infer(.reshape, "tokens", [("x", f32("N", 7, 7, 768))], ["shape": .ints([0, -1, 768])]),
                       f32("N", 49, 768))
        // -1 takes the batch's place when the known extents already match.
        XCTAssertEqual(try infer(.reshape, "tokens", [("x", f32("N", 7, 7, 768))], ["shape": .ints([-1, 49, 768])]),
                       f32("N", 49, 768))
        XCTAssertEqual(try infer(.reshape, "r", [("x", f32(2, 3, 4))], ["shape": .ints([4, -1])]), f32(4, 6))
    }

    func testFlattenAndGlobalPools() throws {
        XCTAssertEqual(try infer(.flatten, "flatten", [("x", f32("N", 7, 7, 512))]), f32("N", 25088))
        XCTAssertEqual(try infer(.flatten, "f0", [("x", f32(2, 3, 4))], ["axis": .int(0)]), f32(1, 24))
        XCTAssertEqual(try infer(.globalAvgPool2d, "gap", [("x", f32("N", 7, 7, 512))]), f32("N", 512))
        XCTAssertEqual(try infer(.globalMaxPool2d, "gmp", [("x", f32("N", 512, 7, 7))],
                                 ["layout": .string("nchw"), "keepdims": .bool(true)]), f32("N", 512, 1, 1))
    }

    func testPools() throws {
        XCTAssertEqual(try infer(.maxPool2d, "block1_pool", [("x", f32("N", 224, 224, 64))]), f32("N", 112, 112, 64))
        XCTAssertEqual(try infer(.avgPool2d, "avg", [("x", f32("N", 7, 7, 8))],
                                 ["pool_size": .ints([3, 3]), "strides": .ints([1, 1]), "padding": .string("same")]),
                       f32("N", 7, 7, 8))
    }

    func testNormalizationKeepsShape() throws {
        XCTAssertEqual(try infer(.layerNorm, "ln", [("x", f32("N", 49, 768)), ("g", f32(768)), ("b", f32(768))]),
                       f32("N", 49, 768))
        XCTAssertEqual(try infer(.batchNorm, "bn", [("x", f32("N", 64, 8, 8)), ("g", f32(64)), ("b", f32(64)),
                                                     ("m", f32(64)), ("v", f32(64))], ["axis": .int(1)]),
                       f32("N", 64, 8, 8))
    }

    func testBroadcasting() throws {
        XCTAssertEqual(try infer(.add, "bias", [("a", f32("N", 49, 768)), ("b", f32(768))]), f32("N", 49, 768))
        XCTAssertEqual(try infer(.mul, "m", [("a", f32("N", 1, 5)), ("b", f32(3, 1))]), f32("N", 3, 5))
        XCTAssertEqual(try infer(.sum, "s", [("a", f32(4, 1)), ("b", f32(1, 5)), ("c", f32(5))]), f32(4, 5))
    }

    func testMatMul() throws {
        XCTAssertEqual(try infer(.matmul, "mm", [("a", f32("N", 49, 768)), ("b", f32(768, 3072))]), f32("N", 49, 3072))
        XCTAssertEqual(try infer(.matmul, "dot", [("a", f32(3)), ("b", f32(3))]), f32())
        XCTAssertEqual(try infer(.matmul, "mv", [("a", f32(2, 4, 3)), ("b", f32(3))]), f32(2, 4))
    }

    func testReductionsAndSoftmax() throws {
        XCTAssertEqual(try infer(.reduceMean, "mean", [("x", f32("N", 7, 7, 512))],
                                 ["axes": .ints([1, 2]), "keepdims": .bool(false)]), f32("N", 512))
        XCTAssertEqual(try infer(.reduceSum, "total", [("x", f32("N", 3))]), f32(1, 1))
        XCTAssertEqual(try infer(.softmax, "p", [("x", f32("N", 10))]), f32("N", 10))
    }

    func testDataMovement() throws {
        XCTAssertEqual(try infer(.transpose, "t", [("x", f32(2, 3, 4))]), f32(4, 3, 2))
        XCTAssertEqual(try infer(.transpose, "nchw", [("x", f32("N", 7, 7, 512))], ["perm": .ints([0, 3, 1, 2])]),
                       f32("N", 512, 7, 7))
        XCTAssertEqual(try infer(.concat, "join", [("a", f32("N", 7, 7, 512)), ("b", f32("N", 7, 7, 256))]),
                       f32("N", 7, 7, 768))
        XCTAssertEqual(try infer(.pad, "pad", [("x", f32("N", 7, 7, 3))], ["pads": .ints([0, 1, 1, 0, 0, 1, 1, 0])]),
                       f32("N", 9, 9, 3))
        XCTAssertEqual(try infer(.squeeze, "sq", [("x", f32("N", 1, 1, 512))], ["axes": .ints([1, 2])]), f32("N", 512))
        XCTAssertEqual(try infer(.squeeze, "sqall", [("x", f32(1, 3, 1))]), f32(3))
        XCTAssertEqual(try infer(.unsqueeze, "un", [("x", f32(3, 4))], ["axes": .ints([0, -1])]), f32(1, 3, 4, 1))
        XCTAssertEqual(try infer(.cast, "c", [("x", f32(3))], ["to": .string("int64")]), TensorType(.int64, [3]))
        XCTAssertEqual(try infer(.dropout, "drop", [("x", f32("N", 256))], ["rate": .float(0.5)]), f32("N", 256))
        XCTAssertEqual(try infer(.identity, "id", [("x", f32(0, 5))]), f32(0, 5))
    }

    func testSliceClampsAsONNX() throws {
        XCTAssertEqual(try infer(.slice, "tail", [("x", f32(10))], ["starts": .ints([-3]), "ends": .ints([Int.max])]), f32(3))
        XCTAssertEqual(try infer(.slice, "rev", [("x", f32(10))],
                                 ["starts": .ints([-1]), "ends": .ints([Int.min]), "steps": .ints([-1])]), f32(10))
        XCTAssertEqual(try infer(.slice, "stride", [("x", f32(10))],
                                 ["starts": .ints([2]), "ends": .ints([100]), "steps": .ints([3])]), f32(3))
        XCTAssertEqual(try infer(.slice, "empty", [("x", f32(10))], ["starts": .ints([8]), "ends": .ints([2])]), f32(0))
        XCTAssertEqual(try infer(.slice, "cls", [("x", f32("N", 50, 768))],
                                 ["starts": .ints([0]), "ends": .ints([1]), "axes": .ints([1])]), f32("N", 1, 768))
    }

    func testGather() throws {
        let indices = TensorType(.int64, [2, 3])
        XCTAssertEqual(try infer(.gather, "g", [("x", f32(5, 4)), ("i", indices)]), f32(2, 3, 4))
        XCTAssertEqual(try infer(.gather, "g1", [("x", f32("N", 5, 4)), ("i", TensorType(.int64, []))], ["axis": .int(1)]),
                       f32("N", 4))
    }

    func testAttributeDefaultsComeFromTheSchema() {
        let node = Node(name: "p", op: .maxPool2d, inputs: ["x"], outputs: ["p"])
        XCTAssertEqual(node.resolvedAttribute("pool_size"), .ints([2, 2]))
        XCTAssertEqual(node.resolvedAttribute("padding"), .string("valid"))
        XCTAssertNil(node.resolvedAttribute("strides"))
        let bn = Node(name: "bn", op: .batchNorm, inputs: [], outputs: ["bn"], attributes: Attributes(["axis": .int(1)]))
        XCTAssertEqual(bn.resolvedAttribute("epsilon"), .float(0.001))
        XCTAssertEqual(bn.resolvedAttribute("axis"), .int(1))
    }

    func testEveryOpKindHasASchemaOfItsOwnKind() {
        XCTAssertEqual(OpRegistry.all.count, OpKind.allCases.count)
        for kind in OpKind.allCases { XCTAssertEqual(OpRegistry.schema(for: kind).kind, kind) }
    }
}

final class DefaultAttributeTests: XCTestCase {
    func testDroppingDefaultsKeepsOnlyWhatDiffers() {
        let node = Node(name: "c", op: .conv2d, inputs: ["x", "k"], outputs: ["c"],
                        attributes: Attributes(["strides": .ints([1, 1]), "padding": .string("same"), "groups": .int(1),
                                                "activation": .string("relu"), "alpha": .int(0), "layout": .string("nhwc")]))
        XCTAssertEqual(node.droppingDefaultAttributes().attributes,
                       Attributes(["padding": .string("same"), "activation": .string("relu"), "alpha": .int(0)]))
        let pool = Node(name: "g", op: .globalAvgPool2d, inputs: ["x"], outputs: ["g"], attributes: Attributes(["keepdims": .int(0)]))
        XCTAssertTrue(pool.droppingDefaultAttributes().attributes.isEmpty)
    }
}
