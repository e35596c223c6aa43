import KeelIR
import XCTest

/// Expected sizes and pads derived by hand from TensorFlow's SAME rule and the floor/ceil formulas.
final class SpatialGeometryTests: XCTestCase {
    func testSameStride2OnOddSizePadsBothSides() throws {
        // out = ceil(7/2) = 4; total = (4-1)*2 + 3 - 7 = 2 -> 1 before, 1 after.
        let geometry = try SpatialGeometry(inputHeight: 7, inputWidth: 7, kernelHeight: 3, kernelWidth: 3,
                                           strides: [2, 2], padding: .same)
        XCTAssertEqual(geometry.outputHeight, 4)
        XCTAssertEqual(geometry.outputWidth, 4)
        XCTAssertEqual(geometry.pads, [1, 1, 1, 1])
    }

    func testSameStride2OnEvenSizePutsTheOddPixelBottomRight() throws {
        // out = 112; total = 111*2 + 3 - 224 = 1 -> 0 top/left, 1 bottom/right (SAME_UPPER).
        let geometry = try SpatialGeometry(inputHeight: 224, inputWidth: 224, kernelHeight: 3, kernelWidth: 3,
                                           strides: [2, 2], padding: .same)
        XCTAssertEqual(geometry.outputHeight, 112)
        XCTAssertEqual(geometry.pads, [0, 0, 1, 1])
    }

    func testSameStride1KeepsSize() throws {
        let geometry = try SpatialGeometry(inputHeight: 224, inputWidth: 224, kernelHeight: 3, kernelWidth: 3, padding: .same)
        XCTAssertEqual(geometry.outputHeight, 224)
        XCTAssertEqual(geometry.pads, [1, 1, 1, 1])
    }

    func testValidStride2() throws {
        // floor((9-3)/2) + 1 = 4
        let geometry = try SpatialGeometry(inputHeight: 9, inputWidth: 9, kernelHeight: 3, kernelWidth: 3,
                                           strides: [2, 2], padding: .valid)
        XCTAssertEqual(geometry.outputHeight, 4)
        XCTAssertEqual(geometry.pads, [0, 0, 0, 0])
        XCTAssertFalse(geometry.hasPadding)
    }

    func testDilationWidensTheKernel() throws {
        // effective kernel (3-1)*2+1 = 5; valid on 9 -> 5
        let geometry = try SpatialGeometry(inputHeight: 9, inputWidth: 9, kernelHeight: 3, kernelWidth: 3,
                                           dilations: [2, 2], padding: .valid)
        XCTAssertEqual(geometry.outputHeight, 5)
        XCTAssertEqual(geometry.height.effectiveKernel, 5)
    }

    func testExplicitAsymmetricPads() throws {
        // height: 5 + 1 + 2 = 8, k3 s1 -> 6; width: 5 + 0 + 0 -> 3
        let geometry = try SpatialGeometry(inputHeight: 5, inputWidth: 5, kernelHeight: 3, kernelWidth: 3,
                                           padding: .explicit, pads: [1, 0, 2, 0])
        XCTAssertEqual(geometry.outputHeight, 6)
        XCTAssertEqual(geometry.outputWidth, 3)
    }

    func testPoolCeilMode() throws {
        // 7, window 2, stride 2: floor -> 3, ceil -> 4.
        let floor = try SpatialGeometry(inputHeight: 7, inputWidth: 7, kernelHeight: 2, kernelWidth: 2,
                                        strides: [2, 2], padding: .valid)
        let ceil = try SpatialGeometry(inputHeight: 7, inputWidth: 7, kernelHeight: 2, kernelWidth: 2,
                                       strides: [2, 2], padding: .valid, ceilMode: true)
        XCTAssertEqual(floor.outputHeight, 3)
        XCTAssertEqual(ceil.outputHeight, 4)
    }

    func testCeilModeNeverStartsAWindowInTheEndPadding() throws {
        // PyTorch MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5 gives 3, not ceil(5/2)+1 = 4.
        let geometry = try SpatialGeometry(inputHeight: 5, inputWidth: 5, kernelHeight: 2, kernelWidth: 2,
                                           strides: [2, 2], padding: .explicit, pads: [1, 1, 1, 1], ceilMode: true)
        XCTAssertEqual(geometry.outputHeight, 3)
    }

    func testRejectsBadValuesWithoutTrapping() {
        XCTAssertThrowsError(try SpatialGeometry(inputHeight: 2, inputWidth: 2, kernelHeight: 3, kernelWidth: 3, padding: .valid))
        XCTAssertThrowsError(try SpatialGeometry(inputHeight: 0, inputWidth: 4, kernelHeight: 1, kernelWidth: 1, padding: .same))
        XCTAssertThrowsError(try SpatialGeometry(inputHeight: 4, inputWidth: 4, kernelHeight: 1, kernelWidth: 1, strides: [0, 1], padding: .same))
        XCTAssertThrowsError(try SpatialGeometry(inputHeight: 4, inputWidth: 4, kernelHeight: 1, kernelWidth: 1, padding: .explicit, pads: [-1, 0, 0, 0]))
        XCTAssertThrowsError(try SpatialGeometry(inputHeight: 4, inputWidth: 4, kernelHeight: 1, kernelWidth: 1, strides: [Int.max, 1], padding: .same))
        XCTAssertThrowsError(try SpatialGeometry(inputHeight: 4, inputWidth: 4, kernelHeight: 1, kernelWidth: 1, strides: [1], padding: .same))
    }

    func testConvolutionGeometryFromNodeReadsDefaultsAndOIHW() throws {
        let node = Node(name: "conv", op: .conv2d, inputs: ["x", "w"], outputs: ["conv"],
                        attributes: Attributes(["layout": .string("nchw"), "kernel_layout": .string("oihw"),
                                                "strides": .ints([2, 2]), "padding": .string("same")]))
        let geometry = try ConvolutionGeometry.resolve(node, input: [1, 3, 224, 224], kernel: [64, 3, 7, 7])
        XCTAssertEqual(geometry.outputShape, [1, 64, 112, 112])
        // total = 111*2 + 7 - 224 = 5 -> 2 before, 3 after
        XCTAssertEqual(geometry.spatial.pads, [2, 2, 3, 3])
        XCTAssertEqual(geometry.groups, 1)
        XCTAssertEqual(geometry.spatial.height.dilation, 1)
    }

    func testPoolingGeometryDefaultsStridesToPoolSize() throws {
        let node = Node(name: "pool", op: .maxPool2d, inputs: ["x"], outputs: ["pool"],
                        attributes: Attributes(["pool_size": .ints([3, 3])]))
        let geometry = try PoolingGeometry.resolve(node, input: ["N", 9, 9, 8])
        XCTAssertEqual(geometry.spatial.height.stride, 3)
        XCTAssertEqual(geometry.outputShape, ["N", 3, 3, 8])
        XCTAssertFalse(geometry.countIncludePad)
    }
}
