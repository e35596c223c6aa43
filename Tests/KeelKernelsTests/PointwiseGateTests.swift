/// Pointwise NHWC convolutions that multiply each image's input channels by a gate first
/// (squeeze-excitation), folded into a scaled copy of the filter or, on images of fewer than four
/// pixels per output, into the GEMM's packing of the input rows (`Conv2D.apply(inputScales:)`,
/// `Conv2D.gateScalesFilter`), at every SIMD level: against the naive reference convolution of the
/// gated input, with one and two threads, on one and two depth passes, narrow and several-panel
/// outputs, with bias, shortcut and activation.
import KeelKernels
import XCTest

final class PointwiseGateTests: XCTestCase {
    typealias Case = ConvolutionFamilyTests.Case

    static let cases: [Case] = {
        func pointwise(_ batch: Int, _ height: Int, _ width: Int, in inputs: Int, out outputs: Int) -> Conv2DGeometry {
            ConvolutionFamilyTests.geometry(batch: batch, height, width, in: inputs, out: outputs, kernel: 1, stride: 1,
                                            dilation: 1, padding: (0, 0, 0, 0), groups: 1, layout: .nhwc)
        }
        return [
            Case(geometry: pointwise(3, 5, 7, in: 37, out: 45), activation: .identity),
            Case(geometry: pointwise(2, 6, 6, in: 300, out: 16), activation: .relu),
            Case(geometry: pointwise(1, 1, 1, in: 19, out: 70), activation: .identity, residual: false),
            Case(geometry: pointwise(2, 9, 4, in: 24, out: 8), activation: .swish),
            Case(geometry: pointwise(2, 8, 8, in: 40, out: 12), activation: .relu),
            Case(geometry: pointwise(3, 3, 3, in: 70, out: 100), activation: .swish),
        ]
    }()

    func testMatchesTheReferenceOfTheGatedInput() throws {
        for (index, testCase) in Self.cases.enumerated() {
            let g = testCase.geometry
            let (channels, pixels) = (g.inputChannels, g.input.height * g.input.width)
            let operands = ConvolutionFamilyTests.Operands(testCase, seed: UInt64(17 * index + 5))
            // One gate per image, in (0, 1) like a sigmoid's, and different for every image.
            let scales = seededValues(g.batch * channels, seed: UInt64(index + 60)).map { 0.5 + 0.5 * $0 }
            var gated = operands.input
            for image in 0..<g.batch {
                for pixel in 0..<pixels {
                    for channel in 0..<channels {
                        gated[(image * pixels + pixel) * channels + channel] *= scales[image * channels + channel]
                    }
                }
            }
            let expected = NaiveConvolution(geometry: g, hwio: operands.hwio, bias: operands.bias,
                                            residual: operands.residual, activation: testCase.activation).run(gated)
            try forEachCapabilitySet { level in
                if index == 0 { XCTAssertEqual(Conv2D.gateScalesFilter(g), !PanelGEMM.hasPrologue, "\(level)") }
                if index == 4 { XCTAssertTrue(Conv2D.gateScalesFilter(g), "\(level)") }
                let weights = try PanelConv2DWeights(try ConvolutionFamilyTests.packed(testCase, operands), layout: .nhwc)
                let one = try PanelPackedFilterTests.run(testCase, operands, weights: weights, inputScales: scales, threads: 1)
                let label = "case \(index) on \(level)"
                assertClose(one, expected, label, tolerance: 2e-5)
                let two = try PanelPackedFilterTests.run(testCase, operands, weights: weights, inputScales: scales, threads: 2)
                XCTAssertEqual(one, two, "\(label): 2 threads changed the values")
            }
        }
    }

    func testAGateOnAnotherLayoutOrWithTooFewScalesIsRefused() throws {
        var testCase = Self.cases[0]
        let operands = ConvolutionFamilyTests.Operands(testCase, seed: 3)
        let weights = try PanelConv2DWeights(try ConvolutionFamilyTests.packed(testCase, operands), layout: .nhwc)
        let short = [Float](repeating: 1, count: testCase.geometry.inputChannels)
        XCTAssertThrowsError(try PanelPackedFilterTests.run(testCase, operands, weights: weights, inputScales: short,
                                                            threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("input channel scales"), "\(error)")
        }
        testCase.geometry.layout = .nchw
        let nchw = ConvolutionFamilyTests.Operands(testCase, seed: 3)
        let nchwWeights = try PanelConv2DWeights(try ConvolutionFamilyTests.packed(testCase, nchw), layout: .nchw)
        let scales = [Float](repeating: 1, count: testCase.geometry.batch * testCase.geometry.inputChannels)
        XCTAssertThrowsError(try PanelPackedFilterTests.run(testCase, nchw, weights: nchwWeights, inputScales: scales,
                                                            threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("pointwise NHWC"), "\(error)")
        }
    }
}
