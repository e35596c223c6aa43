/// A pointwise expansion and the depthwise layer reading it, run band by band
/// (`ExpandedDepthwiseConvolution`), at every SIMD level: against the naive reference of the two
/// layers in turn (the expansion rounded to float, as any two-layer run stores it), and bit for bit
/// against the two layers run separately, with one and two threads. Shapes: odd channel counts,
/// 3×3 and 5×5 filters at stride 1 and 2, odd inputs with TF's uneven "same" padding, a 1×1 map,
/// and rows wide enough that a band holds one or two output rows, so bands keep and recompute rows.
import KeelKernels
import XCTest

final class ExpandedDepthwiseTests: XCTestCase {
    struct Case {
        var expansion: Conv2DGeometry
        var depthwise: Conv2DGeometry
        var expansionActivation: UnaryOperation
        var activation: UnaryOperation
        var residual = false
    }

    static func pair(batch: Int = 1, _ height: Int, _ width: Int, in inputs: Int, expanded channels: Int, kernel: Int,
                     stride: Int, padding: (Int, Int, Int, Int), _ expansionActivation: UnaryOperation,
                     _ activation: UnaryOperation, residual: Bool = false) -> Case {
        let expansion = ConvolutionFamilyTests.geometry(batch: batch, height, width, in: inputs, out: channels, kernel: 1,
                                                        stride: 1, padding: (0, 0, 0, 0), layout: .nhwc)
        let depthwise = ConvolutionFamilyTests.geometry(batch: batch, height, width, in: channels, out: channels,
                                                        kernel: kernel, stride: stride, padding: padding, groups: channels,
                                                        layout: .nhwc)
        return Case(expansion: expansion, depthwise: depthwise, expansionActivation: expansionActivation,
                    activation: activation, residual: residual)
    }

    static let cases: [Case] = [
        pair(batch: 2, 13, 11, in: 5, expanded: 37, kernel: 3, stride: 1, padding: (1, 1, 1, 1), .clip(min: 0, max: 6),
             .identity),
        pair(15, 9, in: 8, expanded: 24, kernel: 3, stride: 2, padding: (0, 0, 1, 1), .swish, .swish),
        pair(batch: 2, 14, 14, in: 16, expanded: 40, kernel: 5, stride: 2, padding: (1, 1, 2, 2), .relu, .identity,
             residual: true),
        pair(9, 7, in: 3, expanded: 20, kernel: 5, stride: 1, padding: (2, 2, 2, 2), .swish, .relu),
        pair(1, 1, in: 7, expanded: 17, kernel: 3, stride: 1, padding: (1, 1, 1, 1), .relu, .identity),
        // 256 KB rows: bands of two output rows at stride 1, one at stride 2.
        pair(9, 40, in: 8, expanded: 1600, kernel: 3, stride: 1, padding: (1, 1, 1, 1), .clip(min: 0, max: 6), .identity,
             residual: true),
        pair(batch: 2, 11, 40, in: 6, expanded: 1600, kernel: 5, stride: 2, padding: (1, 1, 2, 2), .swish, .identity),
    ]

    struct Operands {
        var input: [Float], expansionFilter: [Float], expansionBias: [Float], depthwiseFilter: [Float], bias: [Float]
        var residual: [Float]?

        init(_ testCase: Case, seed: UInt64) {
            let (e, d) = (testCase.expansion, testCase.depthwise)
            input = seededValues(e.inputElementCount, seed: seed)
            expansionFilter = seededValues(e.inputChannels * e.outputChannels, seed: seed + 1)
            expansionBias = seededValues(e.outputChannels, seed: seed + 2)
            depthwiseFilter = seededValues(d.kernel.height * d.kernel.width * d.outputChannels, seed: seed + 3)
            bias = seededValues(d.outputChannels, seed: seed + 4)
            residual = testCase.residual ? seededValues(d.outputElementCount, seed: seed + 5) : nil
        }

        /// The two layers from their definition, in double, the expansion stored as float between them.
        func reference(_ testCase: Case) -> [Float] {
            let expanded = NaiveConvolution(geometry: testCase.expansion, hwio: expansionFilter, bias: expansionBias,
                                            activation: testCase.expansionActivation).run(input)
            return NaiveConvolution(geometry: testCase.depthwise, hwio: depthwiseFilter, bias: bias, residual: residual,
                                    activation: testCase.activation).run(expanded)
        }

        func weights(_ testCase: Case) throws -> (PanelConv2DWeights, PackedConv2DWeights) {
            let (e, d) = (testCase.expansion, testCase.depthwise)
            let expansion = try expansionFilter.withUnsafeBufferPointer {
                try PackedConv2DWeights(hwio: $0, kernel: .one, inputChannelsPerGroup: e.inputChannels,
                                        outputChannels: e.outputChannels, groups: 1)
            }
            let depthwise = try depthwiseFilter.withUnsafeBufferPointer {
                try PackedConv2DWeights(hwio: $0, kernel: d.kernel, inputChannelsPerGroup: 1, outputChannels: d.outputChannels,
                                        groups: d.groups)
            }
            return (try PanelConv2DWeights(expansion, layout: .nhwc), depthwise)
        }

        /// The fused kernel's output, on a NaN-filled scratch.
        func fused(_ testCase: Case, threads: Int) throws -> [Float] {
            let (expansion, depthwise) = try weights(testCase)
            let scratchCount = ExpandedDepthwiseConvolution.scratchSize(for: testCase.depthwise, threads: threads)
            return try withOutput(testCase.depthwise.outputElementCount) { output in
                _ = try withNaNScratch(scratchCount) { scratch in
                    try input.withUnsafeBufferPointer { input in
                        try expansionBias.withUnsafeBufferPointer { expansionBias in
                            try bias.withUnsafeBufferPointer { bias in
                                try (residual ?? []).withUnsafeBufferPointer { residualBuffer in
                                    try ExpandedDepthwiseConvolution.apply(
                                        input: input, expansion: expansion, expansionBias: expansionBias,
                                        expansionActivation: testCase.expansionActivation,
                                        expansionGeometry: testCase.expansion, weights: depthwise, bias: bias,
                                        residual: residual == nil ? nil : residualBuffer, activation: testCase.activation,
                                        output: output, geometry: testCase.depthwise, scratch: scratch,
                                        context: KernelContext(threads: threads))
                                }
                            }
                        }
                    }
                }
            }
        }

        /// The same two layers as separate calls, the expanded tensor stored whole.
        func separate(_ testCase: Case) throws -> [Float] {
            let (expansion, depthwise) = try weights(testCase)
            let scratchCount = 1 + Conv2D.scratchSize(for: testCase.depthwise, algorithm: .depthwise, threads: 1)
            let expanded = try withOutput(testCase.expansion.outputElementCount) { expanded in
                _ = try withNaNScratch(scratchCount) { scratch in
                    try input.withUnsafeBufferPointer { input in
                        try expansionBias.withUnsafeBufferPointer { expansionBias in
                            try Conv2D.apply(input: input, weights: expansion, bias: expansionBias,
                                             activation: testCase.expansionActivation, output: expanded,
                                             geometry: testCase.expansion, scratch: scratch, algorithm: .pointwise)
                        }
                    }
                }
            }
            return try withOutput(testCase.depthwise.outputElementCount) { output in
                _ = try withNaNScratch(scratchCount) { scratch in
                    try expanded.withUnsafeBufferPointer { expanded in
                        try bias.withUnsafeBufferPointer { bias in
                            try (residual ?? []).withUnsafeBufferPointer { residualBuffer in
                                try Conv2D.apply(input: expanded, weights: depthwise, bias: bias,
                                                 residual: residual == nil ? nil : residualBuffer,
                                                 activation: testCase.activation, output: output,
                                                 geometry: testCase.depthwise, scratch: scratch, algorithm: .depthwise)
                            }
                        }
                    }
                }
            }
        }

        private func withNaNScratch(_ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows -> [Float] {
            var scratch = [Float](repeating: .nan, count: count)
            try scratch.withUnsafeMutableBufferPointer { try body($0) }
            return scratch
        }
    }

    func testMatchesTheTwoLayersAtEveryLevel() throws {
        for (index, testCase) in Self.cases.enumerated() {
            let operands = Operands(testCase, seed: UInt64(31 * index + 7))
            let expected = operands.reference(testCase)
            try forEachCapabilitySet(testing: index == 0 ? "expanded depthwise" : nil) { level in
                let label = "case \(index) on \(level)"
                guard ExpandedDepthwiseConvolution.canRun(expansion: testCase.expansion, depthwise: testCase.depthwise) else {
                    XCTAssertThrowsError(try operands.fused(testCase, threads: 1), "\(label): ran without its kernels")
                    return
                }
                let one = try operands.fused(testCase, threads: 1)
                assertClose(one, expected, label, tolerance: 3e-5)
                XCTAssertEqual(one, try operands.fused(testCase, threads: 2), "\(label): 2 threads changed the values")
                XCTAssertEqual(one, try operands.separate(testCase), "\(label): not the separate layers' bits")
            }
        }
    }

    func testPairsTheKernelDoesNotRunAreRefused() throws {
        var dilated = Self.cases[0]
        dilated.depthwise.dilation = Size2D(2, 2)
        var multiplier = Self.cases[1]
        multiplier.depthwise.outputChannels *= 2
        var mismatched = Self.cases[3]
        mismatched.expansion.outputChannels += 1
        var overPadded = Self.cases[4]
        overPadded.depthwise.padding = Padding2D(top: 3, left: 1, bottom: 3, right: 1)
        for (name, testCase) in [("dilated", dilated), ("channel multiplier", multiplier),
                                 ("channel mismatch", mismatched), ("padding as tall as the filter", overPadded)] {
            XCTAssertFalse(ExpandedDepthwiseConvolution.canRun(expansion: testCase.expansion, depthwise: testCase.depthwise),
                           name)
        }
        let operands = Operands(Self.cases[0], seed: 1)
        var small = Self.cases[0]
        small.depthwise.batch = 1
        XCTAssertThrowsError(try operands.fused(small, threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("expansion and depthwise"), "\(error)")
        }
    }
}
