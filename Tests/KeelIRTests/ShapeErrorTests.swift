import KeelIR
import XCTest

/// Each message names the op, the layer and the shapes involved, in one line.
final class ShapeErrorTests: XCTestCase {
    func testDenseFeatureMismatch() {
        assertDiagnostic("dense 'fc1' expects 25,088 input features on the last axis but its input 'flatten' is [N,32768]") {
            try infer(.dense, "fc1", [("flatten", f32("N", 32768)), ("fc1/kernel", f32(25088, 256))])
        }
    }

    func testConvChannelMismatch() {
        assertDiagnostic("conv2d 'block1_conv1' kernel is for 3 input channels but input 'image' has 4: [N,224,224,4]") {
            try infer(.conv2d, "block1_conv1", [("image", f32("N", 224, 224, 4)), ("k", f32(3, 3, 3, 64))])
        }
    }

    func testConvBiasMismatch() {
        assertDiagnostic("conv2d 'c' bias 'c/bias' is [32] but the kernel has 64 output channels") {
            try infer(.conv2d, "c", [("x", f32("N", 8, 8, 3)), ("c/kernel", f32(3, 3, 3, 64)), ("c/bias", f32(32))])
        }
    }

    func testKernelTooLargeForValidPadding() {
        assertDiagnostic("conv2d 'c' 3×3 kernel does not fit input 'x' [N,2,2,3] with valid padding: extent 2 is smaller than the kernel's 3") {
            try infer(.conv2d, "c", [("x", f32("N", 2, 2, 3)), ("k", f32(3, 3, 3, 8))])
        }
    }

    func testNegativeStrides() {
        assertDiagnostic("conv2d 'c' strides must be 2 positive integers, got [-1,1]") {
            try infer(.conv2d, "c", [("x", f32("N", 8, 8, 3)), ("k", f32(3, 3, 3, 8))], ["strides": .ints([-1, 1])])
        }
    }

    func testUnknownPaddingMode() {
        assertDiagnostic("max_pool2d 'p' attribute 'padding' is \"full\" but must be one of \"valid\", \"same\", \"explicit\"") {
            try infer(.maxPool2d, "p", [("x", f32("N", 8, 8, 3))], ["padding": .string("full")])
        }
    }

    func testWrongAttributeType() {
        assertDiagnostic("conv2d 'c' attribute 'strides' must be a list of integers, not \"2\"") {
            try infer(.conv2d, "c", [("x", f32("N", 8, 8, 3)), ("k", f32(3, 3, 3, 8))], ["strides": .string("2")])
        }
    }

    func testReshapeCannotInfer() {
        assertDiagnostic("reshape 'tokens' cannot infer -1 in shape [0,-1,700] from input 'x' [N,7,7,768]: 37,632 elements per N do not divide into 700") {
            try infer(.reshape, "tokens", [("x", f32("N", 7, 7, 768))], ["shape": .ints([0, -1, 700])])
        }
    }

    func testReshapeDropsTheBatch() {
        assertDiagnostic("reshape 'r' shape [49,768] drops the symbolic dimension N of input 'x' [N,7,7,768]; use 0 or -1 for it") {
            try infer(.reshape, "r", [("x", f32("N", 7, 7, 768))], ["shape": .ints([49, 768])])
        }
    }

    func testReshapeElementCount() {
        assertDiagnostic("reshape 'r' shape [5,5] has 25 elements but input 'x' [4,6] has 24") {
            try infer(.reshape, "r", [("x", f32(4, 6))], ["shape": .ints([5, 5])])
        }
    }

    func testBroadcastMismatch() {
        assertDiagnostic("add 'skip' cannot broadcast input 'a' [N,7,7,512] with input 'b' [N,49,768]") {
            try infer(.add, "skip", [("a", f32("N", 7, 7, 512)), ("b", f32("N", 49, 768))])
        }
    }

    func testConcatOffAxisMismatch() {
        assertDiagnostic("concat 'join' inputs differ on axis 1, not the concatenation axis 3: input 'a' [N,7,7,512] and input 'b' [N,8,8,512]") {
            try infer(.concat, "join", [("a", f32("N", 7, 7, 512)), ("b", f32("N", 8, 8, 512))])
        }
    }

    func testConcatSymbolsMustMatchByName() {
        assertDiagnostic("concat 'join' inputs differ on axis 0, not the concatenation axis 1: input 'a' [N,4] and input 'b' [M,4]") {
            try infer(.concat, "join", [("a", f32("N", 4)), ("b", f32("M", 4))])
        }
    }

    func testBatchNormParameterMismatch() {
        assertDiagnostic("batch_norm 'bn' gamma 'bn/gamma' is [256] but input 'fc1' has 512 channels on axis 1: [N,512]") {
            try infer(.batchNorm, "bn", [("fc1", f32("N", 512)), ("bn/gamma", f32(256)), ("bn/beta", f32(512)),
                                         ("bn/moving_mean", f32(512)), ("bn/moving_variance", f32(512))])
        }
    }

    func testSqueezeNonUnitAxis() {
        assertDiagnostic("squeeze 's' cannot squeeze axis 1 of input 'x' [N,7,7,512]: its extent is 7, not 1") {
            try infer(.squeeze, "s", [("x", f32("N", 7, 7, 512))], ["axes": .ints([1])])
        }
    }

    func testSoftmaxAxisOutOfRange() {
        assertDiagnostic("softmax 'p' axis 2 is out of range for input 'x' [N,10] of rank 2") {
            try infer(.softmax, "p", [("x", f32("N", 10))], ["axis": .int(2)])
        }
    }

    func testMatMulInnerMismatch() {
        assertDiagnostic("matmul 'mm' cannot multiply input 'a' [N,49,768] by input 'b' [512,10]: inner dimensions 768 and 512 differ") {
            try infer(.matmul, "mm", [("a", f32("N", 49, 768)), ("b", f32(512, 10))])
        }
    }

    func testGatherIndexOutOfRange() {
        let indices = TensorData(int64s: [1, 7], shape: [2])
        assertDiagnostic("gather 'g' index 7 is out of range for axis 0 of input 'x' [5,4]") {
            try infer(.gather, "g", [("x", f32(5, 4)), ("i", TensorType(.int64, [2]))], constants: ["i": indices])
        }
    }

    func testMissingRequiredInput() {
        assertDiagnostic("dense 'fc1' takes inputs (x, kernel, bias?, residual?) but is missing 'kernel'") {
            try infer(.dense, "fc1", [("x", f32("N", 4))])
        }
    }

    func testMissingRequiredAttribute() {
        assertDiagnostic("reshape 'r' needs attribute 'shape'") {
            try infer(.reshape, "r", [("x", f32(4, 6))])
        }
    }

    func testUnknownCastTarget() {
        assertDiagnostic("cast 'c' attribute 'to' is \"u8\", not a dtype (f32, f16, f64, i32, i64, bool)") {
            try infer(.cast, "c", [("x", f32(3))], ["to": .string("u8")])
        }
    }

    func testZeroHeightInputIsADiagnostic() {
        assertDiagnostic("conv2d 'c' 1×1 kernel does not fit input 'x' [N,0,5,3] with same padding: input extent 0 must be positive") {
            try infer(.conv2d, "c", [("x", f32("N", 0, 5, 3)), ("k", f32(1, 1, 3, 8))], ["padding": .string("same")])
        }
    }

    func testHeadlineCarriesTheLocation() throws {
        let node = Node(name: "fc1", op: .dense, inputs: ["flatten", "fc1/kernel"], outputs: ["fc1"],
                        locations: [SourceLocation(file: "head.keel", line: 12, column: 3)])
        XCTAssertThrowsError(try inferOutputTypes(of: node, inputTypes: [f32("N", 32768), f32(25088, 256)])) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline,
                           "head.keel:12:3: error: dense 'fc1' expects 25,088 input features on the last axis but its input 'flatten' is [N,32768]")
        }
    }
}
