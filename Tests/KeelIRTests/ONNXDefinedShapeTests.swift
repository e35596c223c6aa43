import KeelIR
import XCTest

/// Shapes of the ops whose semantics the ONNX operator definitions fix (layer-norm statistics,
/// split, tile, expand, block moves, PReLU, dilated windows, transposed convolution), derived by hand from those
/// definitions, and their diagnostics.
final class ONNXDefinedShapeTests: XCTestCase {
    private func inferAll(_ op: OpKind, inputs: [(String, TensorType)], outputs: Int,
                          _ attributes: [String: AttributeValue] = [:]) throws -> [TensorType] {
        let node = Node(name: "n", op: op, inputs: inputs.map(\.0), outputs: ["n"] + (1..<max(outputs, 1)).map { "n:\($0)" },
                        attributes: Attributes(attributes))
        return try inferOutputTypes(of: node, inputTypes: inputs.map(\.1))
    }

    func testLayerNormStatisticsKeepTheNormalisedAxesAsOnes() throws {
        let inputs = [("x", f32("N", 49, 768)), ("g", f32(768)), ("b", f32(768))]
        XCTAssertEqual(try inferAll(.layerNorm, inputs: inputs, outputs: 1), [f32("N", 49, 768)])
        XCTAssertEqual(try inferAll(.layerNorm, inputs: inputs, outputs: 3),
                       [f32("N", 49, 768), f32("N", 49, 1), f32("N", 49, 1)])
        let wide = [("x", f32(2, 3, 5)), ("g", f32(3, 5))]
        XCTAssertEqual(try inferAll(.layerNorm, inputs: wide, outputs: 2, ["axis": .int(1)]), [f32(2, 3, 5), f32(2, 1, 1)])
        assertDiagnostic("layer_norm 'n' produces 1 to 3 outputs but the node names 4") {
            try inferAll(.layerNorm, inputs: inputs, outputs: 4)
        }
    }

    func testSplitPieces() throws {
        let x = [("x", f32("N", 10, 6))]
        XCTAssertEqual(try inferAll(.split, inputs: x, outputs: 2, ["axis": .int(1), "sizes": .ints([3, 7])]),
                       [f32("N", 3, 6), f32("N", 7, 6)])
        XCTAssertEqual(try inferAll(.split, inputs: x, outputs: 2, ["axis": .int(-1)]), [f32("N", 10, 3), f32("N", 10, 3)])
        assertDiagnostic("split 'n' sizes [3,6] must be 2 non-negative extents adding up to 10") {
            try inferAll(.split, inputs: x, outputs: 2, ["axis": .int(1), "sizes": .ints([3, 6])])
        }
        assertDiagnostic("split 'n' cannot split symbolic dimension N of input 'x' [N,10,6]") {
            try inferAll(.split, inputs: x, outputs: 2)
        }
    }

    func testTileExpandAndBlockMoves() throws {
        XCTAssertEqual(try infer(.tile, "t", [("x", f32(2, 3))], ["repeats": .ints([2, 1])]), f32(4, 3))
        XCTAssertEqual(try infer(.tile, "t", [("x", f32("N", 3))], ["repeats": .ints([1, 4])]), f32("N", 12))
        assertDiagnostic("tile 't' cannot repeat symbolic dimension N of input 'x' [N,3]") {
            try infer(.tile, "t", [("x", f32("N", 3))], ["repeats": .ints([2, 1])])
        }
        XCTAssertEqual(try infer(.expand, "e", [("x", f32(3, 1))], ["shape": .ints([2, 1, 6])]), f32(2, 3, 6))
        XCTAssertEqual(try infer(.depthToSpace, "d", [("x", f32("N", 2, 3, 8))], ["block_size": .int(2)]), f32("N", 4, 6, 2))
        XCTAssertEqual(try infer(.spaceToDepth, "s", [("x", f32(1, 3, 4, 6))],
                                 ["block_size": .int(2), "layout": .string("nchw")]), f32(1, 12, 2, 3))
        assertDiagnostic("depth_to_space 'd' 6 channels of input 'x' [1,2,2,6] do not divide into 2×2 blocks") {
            try infer(.depthToSpace, "d", [("x", f32(1, 2, 2, 6))], ["block_size": .int(2)])
        }
    }

    func testPReluSlopeMustNotGrowTheInput() throws {
        XCTAssertEqual(try infer(.prelu, "p", [("x", f32("N", 5, 3, 3)), ("s", f32(5, 1, 1))]), f32("N", 5, 3, 3))
        assertDiagnostic("prelu 'p' slope 's' f32[2,5] does not broadcast to input 'x' [5]") {
            try infer(.prelu, "p", [("x", f32(5)), ("s", f32(2, 5))])
        }
    }

    func testDilatedPoolingAndResize() throws {
        // 4 pixels, 2 taps 2 apart span 3: 4 - 3 + 1 = 2 windows per axis.
        XCTAssertEqual(try infer(.maxPool2d, "p", [("x", f32(1, 1, 4, 4))],
                                 ["layout": .string("nchw"), "strides": .ints([1, 1]), "dilations": .ints([2, 2])]),
                       f32(1, 1, 2, 2))
        XCTAssertEqual(try infer(.resize, "r", [("x", f32("N", 3, 5, 5))], ["layout": .string("nchw"), "size": .ints([10, 7])]),
                       f32("N", 3, 10, 7))
        assertDiagnostic("resize 'r' attribute 'coordinates' is \"center\" but must be one of \"half_pixel\", \"half_pixel_symmetric\", \"pytorch_half_pixel\", \"align_corners\", \"asymmetric\", \"tf_crop_and_resize\", \"tf_half_pixel_for_nn\"") {
            try infer(.resize, "r", [("x", f32(1, 5, 5, 3))], ["size": .ints([2, 2]), "coordinates": .string("center")])
        }
    }

    func testConvTransposeGrowsByStrideAndCropsPads() throws {
        // H: 3·(3-1) + 3 - 1 - 1 = 7; W: 2·(3-1) + 3 - 2 - 2 = 3 (ONNX's test_convtranspose_pads).
        XCTAssertEqual(try infer(.convTranspose, "up", [("x", f32("N", 1, 3, 3)), ("k", f32(1, 2, 3, 3))],
                                 ["strides": .ints([3, 2]), "pads": .ints([1, 2, 1, 2])]), f32("N", 2, 7, 3))
        // 1-D, two groups: kernel [4, 3, 2] gives 6 output channels; 5 + 1 + 1 = 7 positions.
        XCTAssertEqual(try infer(.convTranspose, "up", [("x", f32(1, 4, 5)), ("k", f32(4, 3, 2))],
                                 ["groups": .int(2), "output_padding": .ints([1])]), f32(1, 6, 7))
        assertDiagnostic("conv_transpose 'up' kernel [2,2,3,3] is not for 1 input channels in 1 groups") {
            try infer(.convTranspose, "up", [("x", f32(1, 1, 3, 3)), ("k", f32(2, 2, 3, 3))])
        }
    }
}
