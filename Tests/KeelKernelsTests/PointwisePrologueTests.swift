/// Pointwise NHWC convolutions that apply a BatchNorm (and ReLU) to their input as the GEMM packs
/// it (`GEMMPrologue`), reading rows adjacent or a slice of wider rows, at every SIMD level with a
/// GEMM: against the naive reference convolution of the normalised input, and the same values on
/// 1 and 2 threads.
import KeelKernels
import XCTest

final class PointwisePrologueTests: XCTestCase {
    typealias Case = ConvolutionFamilyTests.Case

    static let cases: [(case: Case, extraColumns: Int)] = {
        func pointwise(_ batch: Int, _ height: Int, _ width: Int, in inputs: Int, out outputs: Int) -> Conv2DGeometry {
            ConvolutionFamilyTests.geometry(batch: batch, height, width, in: inputs, out: outputs, kernel: 1, stride: 1,
                                            dilation: 1, padding: (0, 0, 0, 0), groups: 1, layout: .nhwc)
        }
        return [
            (Case(geometry: pointwise(1, 3, 3, in: 45, out: 70), activation: .relu), 0),
            (Case(geometry: pointwise(1, 3, 3, in: 45, out: 70), activation: .relu), 19),
            (Case(geometry: pointwise(2, 7, 5, in: 600, out: 41), activation: .identity), 5),
            (Case(geometry: pointwise(1, 1, 1, in: 31, out: 17), activation: .identity, residual: false), 1),
            (Case(geometry: pointwise(1, 13, 1, in: 19, out: 130), activation: .clip(min: 0, max: 6)), 32),
        ]
    }()

    func pack(_ testCase: Case, _ operands: ConvolutionFamilyTests.Operands) throws -> PanelConv2DWeights {
        try PanelConv2DWeights(try ConvolutionFamilyTests.packed(testCase, operands), layout: testCase.geometry.layout)
    }

    /// Runs the convolution on `input` rows `rowStride` apart through `prologue`.
    func run(_ testCase: Case, _ operands: ConvolutionFamilyTests.Operands, weights: PanelConv2DWeights,
             input: [Float], prologue: GEMMPrologue, threads: Int) throws -> [Float] {
        try PanelPackedFilterTests.run(testCase, operands, weights: weights, input: input, prologue: prologue,
                                       threads: threads)
    }

    func testMatchesTheReferenceOfTheNormalisedInput() throws {
        for (index, (testCase, extraColumns)) in Self.cases.enumerated() {
            let g = testCase.geometry
            let channels = g.inputChannels
            let operands = ConvolutionFamilyTests.Operands(testCase, seed: UInt64(41 * index + 3))
            // Negative scales and shifts too, so the ReLU clips on both sides.
            let scaleShift = seededValues(channels, seed: UInt64(index + 90)).map { $0 * 2 }
                + seededValues(channels, seed: UInt64(index + 95))
            let rowStride = channels + extraColumns
            let rows = g.batch * g.input.height * g.input.width
            for relu in [false, true] {
                var normalised = operands.input
                var wide = [Float](repeating: .nan, count: (rows - 1) * rowStride + channels)
                for row in 0..<rows {
                    for channel in 0..<channels {
                        let value = operands.input[row * channels + channel]
                        wide[row * rowStride + channel] = value
                        let affine = value * scaleShift[channel] + scaleShift[channels + channel]
                        normalised[row * channels + channel] = relu ? max(0, affine) : affine
                    }
                }
                let expected = NaiveConvolution(geometry: g, hwio: operands.hwio, bias: operands.bias,
                                                residual: operands.residual, activation: testCase.activation).run(normalised)
                let prologue = GEMMPrologue(scaleShift: scaleShift, relu: relu,
                                            inputRowStride: extraColumns == 0 ? nil : rowStride)
                try forEachCapabilitySet { level in
                    guard PanelGEMM.hasPrologue else { return }
                    let weights = try pack(testCase, operands)
                    let one = try run(testCase, operands, weights: weights, input: wide, prologue: prologue, threads: 1)
                    let label = "case \(index) relu \(relu) on \(level)"
                    assertClose(one, expected, label, tolerance: 2e-5)
                    let two = try run(testCase, operands, weights: weights, input: wide, prologue: prologue, threads: 2)
                    XCTAssertEqual(one, two, "\(label): 2 threads changed the values")
                }
            }
        }
    }

    func testAPrologueOnAnotherAlgorithmIsRefused() throws {
        var testCase = Self.cases[0].case
        testCase.geometry.layout = .nchw
        let operands = ConvolutionFamilyTests.Operands(testCase, seed: 5)
        let weights = try pack(testCase, operands)
        let prologue = GEMMPrologue(scaleShift: [Float](repeating: 1, count: 2 * testCase.geometry.inputChannels), relu: true)
        XCTAssertThrowsError(try run(testCase, operands, weights: weights, input: operands.input, prologue: prologue,
                                     threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("prologue"), "\(error)")
        }
    }
}
