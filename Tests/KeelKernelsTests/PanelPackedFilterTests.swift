/// Convolutions on filters packed once into the panel GEMM's layout (`PanelConv2DWeights`),
/// against the naive double-precision reference, at every SIMD level and with 1 and 2 threads:
/// output counts that leave a partial strip (right: 32 columns; left: the GEMM's row block), odd
/// channels, 1×1 spatial, stride 2 on odd inputs, depths not a multiple of 16 and past one
/// 512-deep pass, groups. Weights packed on one level also run on the narrower ones (a block of
/// 8 rows read by a 6-row GEMM, or by OpenBLAS).
import KeelKernels
import XCTest

final class PanelPackedFilterTests: XCTestCase {
    typealias Case = ConvolutionFamilyTests.Case

    static func cases(_ layout: ActivationLayout) -> [Case] {
        let none = (0, 0, 0, 0)
        func geometry(_ batch: Int, _ height: Int, _ width: Int, in inputs: Int, out outputs: Int, kernel: Int,
                      stride: Int, dilation: Int, padding: (Int, Int, Int, Int), groups: Int,
                      layout: ActivationLayout) -> Conv2DGeometry {
            ConvolutionFamilyTests.geometry(batch: batch, height, width, in: inputs, out: outputs, kernel: kernel,
                                              stride: stride, dilation: dilation, padding: padding, groups: groups,
                                              layout: layout)
        }
        return [
            Case(geometry: geometry(1, 3, 3, in: 45, out: 70, kernel: 1, stride: 1, dilation: 1, padding: none,
                                    groups: 1, layout: layout), activation: .relu),
            Case(geometry: geometry(1, 1, 1, in: 31, out: 17, kernel: 1, stride: 1, dilation: 1, padding: none,
                                    groups: 1, layout: layout), activation: .identity, residual: false),
            Case(geometry: geometry(2, 7, 5, in: 600, out: 41, kernel: 1, stride: 1, dilation: 1, padding: none,
                                    groups: 1, layout: layout), activation: .clip(min: 0, max: 6)),
            Case(geometry: geometry(1, 9, 9, in: 13, out: 27, kernel: 3, stride: 2, dilation: 1, padding: (1, 1, 1, 1),
                                    groups: 1, layout: layout), activation: .swish),
            Case(geometry: geometry(1, 5, 5, in: 70, out: 9, kernel: 3, stride: 1, dilation: 1, padding: (1, 1, 1, 1),
                                    groups: 1, layout: layout), activation: .hardSwish, bias: false),
            Case(geometry: geometry(1, 6, 7, in: 18, out: 30, kernel: 3, stride: 1, dilation: 2, padding: (2, 2, 2, 2),
                                    groups: 3, layout: layout), activation: .gelu),
            Case(geometry: geometry(1, 4, 4, in: 8, out: 3, kernel: 1, stride: 2, dilation: 1, padding: none,
                                    groups: 1, layout: layout), activation: .sigmoid),
        ]
    }

    /// Runs `testCase` on `weights` (packed earlier, possibly on another level).
    func run(_ testCase: Case, _ operands: ConvolutionFamilyTests.Operands, weights: PanelConv2DWeights,
             threads: Int) throws -> [Float] {
        try Self.run(testCase, operands, weights: weights, threads: threads)
    }

    /// Runs `testCase` on `weights`, on `input` instead of the operands' when given, through `prologue`.
    static func run(_ testCase: Case, _ operands: ConvolutionFamilyTests.Operands, weights: PanelConv2DWeights,
                    input: [Float]? = nil, prologue: GEMMPrologue? = nil, inputScales: [Float]? = nil,
                    threads: Int) throws -> [Float] {
        let g = testCase.geometry
        var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: g, algorithm: .im2colGEMM, threads: threads)
                                                      + (inputScales == nil ? 0 : weights.inputScaleScratchSize))
        return try withOutput(g.outputElementCount) { output in
            try (input ?? operands.input).withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { scratch in
                    try (operands.bias ?? []).withUnsafeBufferPointer { bias in
                        try (operands.residual ?? []).withUnsafeBufferPointer { residual in
                            try (inputScales ?? []).withUnsafeBufferPointer { scales in
                                try Conv2D.apply(input: source, weights: weights, bias: operands.bias == nil ? nil : bias,
                                                 residual: operands.residual == nil ? nil : residual,
                                                 activation: testCase.activation, output: output, geometry: g,
                                                 scratch: scratch, prologue: prologue,
                                                 inputScales: inputScales == nil ? nil : scales,
                                                 context: KernelContext(threads: threads))
                            }
                        }
                    }
                }
            }
        }
    }

    func pack(_ testCase: Case, _ operands: ConvolutionFamilyTests.Operands) throws -> PanelConv2DWeights {
        let g = testCase.geometry
        let packed = try operands.hwio.withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: g.kernel, inputChannelsPerGroup: g.inputChannelsPerGroup,
                                    outputChannels: g.outputChannels, groups: g.groups)
        }
        return try PanelConv2DWeights(packed, layout: g.layout)
    }

    func testMatchesReferenceAtEveryLevelAndAcrossLevels() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            for (index, testCase) in Self.cases(layout).enumerated() {
                let operands = ConvolutionFamilyTests.Operands(testCase, seed: UInt64(31 * index + 7))
                var packedOnLevels: [(CPUCapabilities, PanelConv2DWeights)] = []
                try forEachCapabilitySet { level in
                    packedOnLevels.append((level, try pack(testCase, operands)))
                    for (packedOn, weights) in packedOnLevels {
                        for threads in [1, 2] {
                            let actual = try run(testCase, operands, weights: weights, threads: threads)
                            assertClose(actual, operands.expected, "\(layout) case \(index) packed on \(packedOn), "
                                        + "run on \(level), threads \(threads)", tolerance: 2e-5)
                        }
                    }
                }
            }
        }
    }

    func testRowMajorFormRoundTrips() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            let testCase = Self.cases(layout)[5]
            let g = testCase.geometry
            let hwio = seededValues(g.kernel.height * g.kernel.width * g.inputChannelsPerGroup * g.outputChannels, seed: 3)
            let packed = try hwio.withUnsafeBufferPointer {
                try PackedConv2DWeights(hwio: $0, kernel: g.kernel, inputChannelsPerGroup: g.inputChannelsPerGroup,
                                        outputChannels: g.outputChannels, groups: g.groups)
            }
            XCTAssertEqual(try PanelConv2DWeights(packed, layout: layout).rowMajor(), packed, "\(layout)")
        }
    }

    func testWeightsForTheOtherLayoutAreRefused() throws {
        let testCase = Self.cases(.nchw)[0]
        let operands = ConvolutionFamilyTests.Operands(testCase, seed: 1)
        let weights = try pack(testCase, operands)
        var nhwc = testCase
        nhwc.geometry.layout = .nhwc
        XCTAssertThrowsError(try run(nhwc, operands, weights: weights, threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("packed for nchw"), "\(error)")
        }
    }
}
