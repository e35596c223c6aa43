/// The convolution family: every algorithm that can compute a case (im2col GEMM, pointwise,
/// direct, Winograd, depthwise; grouped through im2col; bf16 where a bf16 kernel is present)
/// with its fused epilogue (bias, residual, every activation the C kernels fuse and one they do
/// not), at every capability set this CPU has and with 1 and 2 threads, against a naive
/// double-precision reference on awkward sizes: odd channel counts, 1×1 spatial, stride 2 on odd
/// inputs, uneven padding, groups = channels and 1 < groups < channels, depths past the GEMM's
/// pack and pass limits. A new kernel adds its algorithm to `algorithms(for:)`; a new shape adds
/// a case.
import KeelKernels
import XCTest

final class ConvolutionFamilyTests: XCTestCase {
    struct Case {
        var geometry: Conv2DGeometry
        var activation: UnaryOperation
        var bias = true
        var residual = true
    }

    static func geometry(batch: Int = 1, _ height: Int, _ width: Int, in inputs: Int, out outputs: Int, kernel: Int = 3,
                         stride: Int = 1, dilation: Int = 1, padding: (Int, Int, Int, Int) = (1, 1, 1, 1),
                         groups: Int = 1, layout: ActivationLayout) -> Conv2DGeometry {
        Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: inputs, outputChannels: outputs,
                       kernel: Size2D(kernel, kernel), stride: Size2D(stride, stride), dilation: Size2D(dilation, dilation),
                       padding: Padding2D(top: padding.0, left: padding.1, bottom: padding.2, right: padding.3),
                       groups: groups, layout: layout)
    }

    /// groups = channels: 3×3, 5×5 and 7×7, stride 1 and 2 (odd and even inputs, TF's uneven "same"
    /// padding), dilation 2, 1×1 spatial, and an activation the kernel leaves to a second pass; rows
    /// wide enough for the NHWC kernel's runs of 8 and 4 interior pixels beside its border pixels and
    /// for the NCHW kernel's full and partly masked blocks of 4 vectors; then the NHWC sliding body's
    /// channel blocks and run tails, and a call too large for blocks.
    static func depthwiseCases(_ layout: ActivationLayout) -> [Case] {
        [
            Case(geometry: geometry(batch: 2, 13, 11, in: 37, out: 37, groups: 37, layout: layout), activation: .swish),
            Case(geometry: geometry(15, 15, in: 17, out: 17, stride: 2, groups: 17, layout: layout),
                 activation: .clip(min: 0, max: 6), residual: false),
            Case(geometry: geometry(9, 7, in: 3, out: 3, kernel: 5, stride: 2, padding: (2, 2, 2, 2), groups: 3,
                                    layout: layout), activation: .hardSwish),
            Case(geometry: geometry(1, 1, in: 40, out: 40, groups: 40, layout: layout), activation: .sigmoid),
            Case(geometry: geometry(8, 9, in: 24, out: 24, kernel: 5, dilation: 2, padding: (4, 4, 4, 4), groups: 24,
                                    layout: layout), activation: .leakyRelu(alpha: 0.1), bias: false),
            Case(geometry: geometry(10, 10, in: 19, out: 19, stride: 2, padding: (0, 0, 1, 1), groups: 19, layout: layout),
                 activation: .gelu),
            Case(geometry: geometry(batch: 3, 6, 5, in: 70, out: 70, kernel: 5, padding: (2, 2, 2, 2), groups: 70,
                                    layout: layout), activation: .tanh, residual: false),
            Case(geometry: geometry(batch: 2, 6, 29, in: 21, out: 21, stride: 2, groups: 21, layout: layout),
                 activation: .relu),
            Case(geometry: geometry(9, 23, in: 13, out: 13, kernel: 7, padding: (3, 3, 3, 3), groups: 13, layout: layout),
                 activation: .gelu),
            Case(geometry: geometry(4, 21, in: 33, out: 33, dilation: 2, padding: (2, 2, 2, 2), groups: 33, layout: layout),
                 activation: .identity, bias: false),
            Case(geometry: geometry(3, 56, in: 5, out: 5, groups: 5, layout: layout), activation: .relu),
            Case(geometry: geometry(5, 141, in: 3, out: 3, stride: 2, groups: 3, layout: layout), activation: .swish),
            // The NHWC sliding body: channel blocks of 64 with a masked tail in the last, output
            // rows of 15 (runs of 8, 4, 2 and 1), 7×7 at stride 2 on odd inputs, TF's uneven 5×5
            // stride-2 padding, and a filter wider than its input.
            Case(geometry: geometry(5, 15, in: 131, out: 131, groups: 131, layout: layout),
                 activation: .clip(min: 0, max: 6)),
            Case(geometry: geometry(batch: 2, 7, 15, in: 150, out: 150, kernel: 7, stride: 2, padding: (3, 3, 3, 3),
                                    groups: 150, layout: layout), activation: .hardSwish),
            Case(geometry: geometry(14, 14, in: 40, out: 40, kernel: 5, stride: 2, padding: (1, 1, 2, 2), groups: 40,
                                    layout: layout), activation: .swish),
            // Channel multipliers (each input channel feeding 2 or 3 outputs): FastViT's 7×7
            // stride-2 downsampling on an odd map, 3×3 at stride 1, odd channels, a batch.
            Case(geometry: geometry(15, 13, in: 24, out: 48, kernel: 7, stride: 2, padding: (3, 3, 3, 3), groups: 24,
                                    layout: layout), activation: .identity),
            Case(geometry: geometry(batch: 2, 9, 7, in: 5, out: 15, groups: 5, layout: layout), activation: .gelu),
            Case(geometry: geometry(6, 11, in: 13, out: 26, stride: 2, padding: (0, 0, 1, 1), groups: 13, layout: layout),
                 activation: .relu, residual: false),
            Case(geometry: geometry(2, 3, in: 24, out: 24, kernel: 7, padding: (3, 3, 3, 3), groups: 24, layout: layout),
                 activation: .relu, residual: false),
            // The held-filter body (AVX2): a 5×5 stride-2 filter wider and taller than its input,
            // every pixel a border pixel.
            Case(geometry: geometry(3, 2, in: 12, out: 12, kernel: 5, stride: 2, padding: (2, 2, 2, 2), groups: 12,
                                    layout: layout),
                 activation: .relu),
            // Rows wider than a span of 24 outputs (a span, then runs of 6, 4 and 1 in the next) with
            // a masked channel vector: 3×3 at stride 1 and 5×5 at stride 2.
            Case(geometry: geometry(4, 35, in: 20, out: 20, groups: 20, layout: layout), activation: .clip(min: 0, max: 6)),
            Case(geometry: geometry(5, 67, in: 11, out: 11, kernel: 5, stride: 2, padding: (2, 2, 2, 2), groups: 11,
                                    layout: layout), activation: .swish),
            // 3×3 at stride 1 on rows narrower than a run: pairs of output rows per pass, an odd
            // row count leaving a single last row, a masked channel block, 1-row and 1-column maps.
            Case(geometry: geometry(batch: 2, 7, 7, in: 150, out: 150, groups: 150, layout: layout),
                 activation: .clip(min: 0, max: 6)),
            Case(geometry: geometry(6, 5, in: 17, out: 17, padding: (0, 1, 2, 1), groups: 17, layout: layout),
                 activation: .swish, bias: false),
            Case(geometry: geometry(1, 3, in: 70, out: 70, groups: 70, layout: layout), activation: .relu),
            Case(geometry: geometry(batch: 3, 5, 1, in: 9, out: 9, groups: 9, layout: layout), activation: .identity),
            // Held-filter runs that test their columns at both borders at once: rows of exactly 8
            // outputs (AVX-512's run) at stride 1 and of 4 at stride 2, masked channel vectors.
            Case(geometry: geometry(3, 8, in: 35, out: 35, groups: 35, layout: layout), activation: .hardSwish),
            Case(geometry: geometry(5, 7, in: 21, out: 21, stride: 2, groups: 21, layout: layout),
                 activation: .relu, bias: false),
            // Too large for L2 (1.6 MB): whole rows of channels, the next rows fetched ahead (the
            // held-filter body on AVX2), across the batch's image boundary.
            Case(geometry: geometry(batch: 2, 40, 40, in: 100, out: 100, kernel: 5, stride: 2, padding: (1, 1, 2, 2),
                                    groups: 100, layout: layout), activation: .swish, bias: false),
            Case(geometry: geometry(batch: 2, 32, 32, in: 100, out: 100, groups: 100, layout: layout),
                 activation: .clip(min: 0, max: 6)),
        ]
    }

    /// 1 < groups < channels with as many outputs as inputs per group (the grouped kernel in NHWC):
    /// groups of 2, 4 and 8 channels (a vector covers whole groups; AVX2 takes 8 by broadcast), 16
    /// and 32 (whole vectors per group), 3, 6, 12, 20, 24 and 40 (masked or half vectors per group); channel counts
    /// leaving a masked vector; stride 2 on odd inputs, TF's uneven padding, dilation, 1×1 and 5×5
    /// filters, 1×1 and 1-column maps, rows with several interior blocks and their tails, and a
    /// short map at batch 1 cut into channel blocks.
    static func groupedCases(_ layout: ActivationLayout) -> [Case] {
        [
            Case(geometry: geometry(12, 9, in: 16, out: 16, groups: 8, layout: layout), activation: .relu),
            Case(geometry: geometry(7, 7, in: 128, out: 128, groups: 32, layout: layout), activation: .relu),
            Case(geometry: geometry(15, 15, in: 40, out: 40, stride: 2, groups: 10, layout: layout),
                 activation: .clip(min: 0, max: 6), residual: false),
            Case(geometry: geometry(batch: 2, 14, 13, in: 104, out: 104, groups: 13, layout: layout), activation: .swish),
            Case(geometry: geometry(9, 9, in: 48, out: 48, stride: 2, padding: (0, 0, 1, 1), groups: 6, layout: layout),
                 activation: .identity, bias: false),
            Case(geometry: geometry(6, 6, in: 64, out: 64, groups: 4, layout: layout), activation: .hardSwish),
            Case(geometry: geometry(5, 7, in: 48, out: 48, stride: 2, groups: 2, layout: layout), activation: .gelu),
            Case(geometry: geometry(batch: 2, 7, 7, in: 96, out: 96, groups: 3, layout: layout), activation: .relu),
            Case(geometry: geometry(5, 5, in: 12, out: 12, kernel: 5, padding: (2, 2, 2, 2), groups: 4, layout: layout),
                 activation: .sigmoid),
            Case(geometry: geometry(8, 9, in: 36, out: 36, dilation: 2, padding: (2, 2, 2, 2), groups: 6, layout: layout),
                 activation: .leakyRelu(alpha: 0.1)),
            Case(geometry: geometry(1, 1, in: 24, out: 24, groups: 3, layout: layout), activation: .tanh),
            Case(geometry: geometry(3, 3, in: 256, out: 256, groups: 32, layout: layout), activation: .relu),
            Case(geometry: geometry(6, 5, in: 32, out: 32, kernel: 1, padding: (0, 0, 0, 0), groups: 8, layout: layout),
                 activation: .relu),
            Case(geometry: geometry(4, 31, in: 24, out: 24, groups: 6, layout: layout), activation: .swish),
            Case(geometry: geometry(4, 31, in: 64, out: 64, groups: 2, layout: layout), activation: .clip(min: 0, max: 6)),
            Case(geometry: geometry(batch: 3, 5, 1, in: 16, out: 16, groups: 4, layout: layout), activation: .identity),
            Case(geometry: geometry(2, 3, in: 40, out: 40, kernel: 5, stride: 2, padding: (2, 2, 2, 2), groups: 5,
                                    layout: layout), activation: .relu),
            // 1.5 vectors per group (24 on AVX-512, 12 on AVX2, RegNet's width): an odd group count in
            // channel blocks, stride 2, and a row of full blocks and a tail.
            Case(geometry: geometry(3, 3, in: 72, out: 72, groups: 3, layout: layout), activation: .swish),
            Case(geometry: geometry(batch: 2, 9, 21, in: 36, out: 36, stride: 2, groups: 3, layout: layout),
                 activation: .relu),
            Case(geometry: geometry(5, 19, in: 96, out: 96, groups: 4, layout: layout), activation: .identity),
            // A vector and a short half vector per group (40 and 20 channels), one-vector groups of 16
            // whose border pixels run alone, each filter block contiguous.
            Case(geometry: geometry(5, 6, in: 80, out: 80, groups: 2, layout: layout), activation: .relu),
            Case(geometry: geometry(batch: 2, 4, 7, in: 60, out: 60, stride: 2, groups: 3, layout: layout),
                 activation: .hardSwish),
            Case(geometry: geometry(6, 6, in: 48, out: 48, groups: 3, layout: layout), activation: .swish),
        ]
    }

    /// The GEMM paths: 1 < groups < channels, pointwise (shallow, packed, several depth passes),
    /// strided im2col on an odd input, few input channels (direct), Winograd.
    static func gemmCases(_ layout: ActivationLayout) -> [Case] {
        [
            Case(geometry: geometry(7, 9, in: 12, out: 18, groups: 3, layout: layout), activation: .relu),
            Case(geometry: geometry(9, 9, in: 8, out: 8, stride: 2, groups: 2, layout: layout),
                 activation: .hardSigmoid(alpha: 0.2, beta: 0.5)),
            Case(geometry: geometry(batch: 2, 5, 7, in: 19, out: 45, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .relu),
            Case(geometry: geometry(3, 3, in: 200, out: 70, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .tanh, residual: false),
            Case(geometry: geometry(2, 2, in: 600, out: 33, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .swish),
            Case(geometry: geometry(1, 1, in: 16, out: 10, kernel: 1, padding: (0, 0, 0, 0), groups: 2, layout: layout),
                 activation: .identity),
            Case(geometry: geometry(11, 11, in: 5, out: 35, stride: 2, layout: layout), activation: .clip(min: -1, max: 1)),
            Case(geometry: geometry(6, 7, in: 3, out: 20, layout: layout), activation: .relu),
            Case(geometry: geometry(24, 20, in: 16, out: 17, layout: layout), activation: .relu),
            Case(geometry: geometry(batch: 2, 4, 5, in: 150, out: 40, kernel: 3, stride: 2, layout: layout),
                 activation: .gelu),
            Case(geometry: geometry(batch: 2, 15, 13, in: 16, out: 33, layout: layout), activation: .relu),
            // GELU fused into every 3×3 stride-1 algorithm (Winograd's tiles, direct, im2col) and a 1×1.
            Case(geometry: geometry(batch: 2, 9, 10, in: 12, out: 20, layout: layout), activation: .gelu),
            Case(geometry: geometry(5, 6, in: 40, out: 24, kernel: 1, padding: (0, 0, 0, 0), layout: layout),
                 activation: .geluTanh),
            Case(geometry: geometry(1, 1, in: 16, out: 16, layout: layout), activation: .identity, residual: false),
            Case(geometry: geometry(batch: 2, 13, 15, in: 6, out: 9, stride: 2, padding: (0, 0, 1, 1), layout: layout),
                 activation: .sigmoid),
            // Strided 1×1 kernels, which NHWC reads in place: images evenly spaced (one product over
            // the batch), odd heights (a product per image), groups, and several depth passes.
            Case(geometry: geometry(batch: 3, 8, 10, in: 13, out: 37, kernel: 1, stride: 2, padding: (0, 0, 0, 0),
                                    layout: layout), activation: .relu),
            Case(geometry: geometry(batch: 2, 7, 9, in: 24, out: 20, kernel: 1, stride: 2, padding: (0, 0, 0, 0),
                                    groups: 2, layout: layout), activation: .swish),
            Case(geometry: geometry(batch: 2, 10, 11, in: 600, out: 33, kernel: 1, stride: 3, padding: (0, 0, 0, 0),
                                    layout: layout), activation: .identity, bias: false),
            // Outputs at least 32 wide, whose interior NHWC reads the input in place, the pixels
            // around it through im2col: stride 2 with the bottom row's taps in the padding, a
            // 5×5 kernel whose 350-deep kernel rows split the 256-deep pass and uneven padding,
            // TF's stride-2 padding (none above or left), and two images.
            Case(geometry: geometry(batch: 2, 7, 70, in: 5, out: 21, stride: 2, layout: layout), activation: .relu),
            Case(geometry: geometry(5, 40, in: 70, out: 40, kernel: 5, padding: (2, 1, 2, 3), layout: layout),
                 activation: .gelu),
            Case(geometry: geometry(batch: 2, 8, 66, in: 16, out: 33, stride: 2, padding: (0, 0, 1, 1), layout: layout),
                 activation: .swish, bias: false),
        ]
    }

    /// Seeded operands of `testCase` and the reference's output for them.
    struct Operands {
        var hwio: [Float], input: [Float], bias: [Float]?, residual: [Float]?, expected: [Float]

        init(_ testCase: Case, seed: UInt64) {
            let g = testCase.geometry
            hwio = seededValues(g.kernel.height * g.kernel.width * g.inputChannelsPerGroup * g.outputChannels, seed: seed)
            input = seededValues(g.inputElementCount, seed: seed + 1)
            bias = testCase.bias ? seededValues(g.outputChannels, seed: seed + 2) : nil
            residual = testCase.residual ? seededValues(g.outputElementCount, seed: seed + 3) : nil
            expected = NaiveConvolution(geometry: g, hwio: hwio, bias: bias, residual: residual,
                                        activation: testCase.activation).run(input)
        }
    }

    /// The fp32 algorithms that compute `geometry`.
    static func algorithms(for geometry: Conv2DGeometry) -> [Conv2DAlgorithm] {
        var algorithms: [Conv2DAlgorithm] = [.im2colGEMM]
        if geometry.isPointwise { algorithms.append(.pointwise) }
        if geometry.groups == 1 { algorithms.append(.direct) }
        if WinogradWeights.canRun(geometry) { algorithms += WinogradTile.allCases.map { .winograd($0) } }
        if geometry.groups > 1 && geometry.groups == geometry.inputChannels
            && (geometry.groups == geometry.outputChannels || (geometry.layout == .nhwc && geometry.outputChannels % geometry.groups == 0)) {
            algorithms.append(.depthwise)
        }
        if geometry.groups > 1 && geometry.groups < geometry.inputChannels && geometry.inputChannels == geometry.outputChannels
            && geometry.layout == .nhwc {
            algorithms.append(.grouped)
        }
        return algorithms
    }

    static func packed(_ testCase: Case, _ operands: Operands) throws -> PackedConv2DWeights {
        let g = testCase.geometry
        return try operands.hwio.withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: g.kernel, inputChannelsPerGroup: g.inputChannelsPerGroup,
                                    outputChannels: g.outputChannels, groups: g.groups)
        }
    }

    /// Runs `body` on the operands' buffers, a NaN-filled scratch of `scratchCount` floats and a zeroed output.
    func convolve(_ testCase: Case, _ operands: Operands, scratchCount: Int,
                  _ body: (_ input: UnsafeBufferPointer<Float>, _ bias: UnsafeBufferPointer<Float>?,
                           _ residual: UnsafeBufferPointer<Float>?, _ output: UnsafeMutableBufferPointer<Float>,
                           _ scratch: UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> [Float] {
        let (input, bias, residual) = (operands.input, operands.bias, operands.residual)
        var scratch = [Float](repeating: .nan, count: max(scratchCount, 1))
        return try withOutput(testCase.geometry.outputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { scratch in
                    try (bias ?? []).withUnsafeBufferPointer { biasBuffer in
                        try (residual ?? []).withUnsafeBufferPointer { residualBuffer in
                            try body(source, bias == nil ? nil : biasBuffer, residual == nil ? nil : residualBuffer,
                                     output, scratch)
                        }
                    }
                }
            }
        }
    }

    func check(_ cases: [Case], label: String) throws {
        for (index, testCase) in cases.enumerated() {
            let operands = Operands(testCase, seed: UInt64(100 * index))
            let weights = try Self.packed(testCase, operands)
            let g = testCase.geometry
            try forEachCapabilitySet(testing: index == 0 ? "convolution" : nil) { capabilities in
                for algorithm in Self.algorithms(for: g) {
                    for threads in [1, 2] {
                        let scratchCount = Conv2D.scratchSize(for: g, algorithm: algorithm, threads: threads)
                        let actual = try convolve(testCase, operands, scratchCount: scratchCount) {
                            input, bias, residual, output, scratch in
                            try Conv2D.apply(input: input, weights: weights, bias: bias, residual: residual,
                                             activation: testCase.activation, output: output, geometry: g, scratch: scratch,
                                             algorithm: algorithm, context: KernelContext(threads: threads))
                        }
                        // Winograd's transforms round more than a direct sum (F(4×4, 3×3) scales by up to 10).
                        assertClose(actual, operands.expected, "\(label) case \(index) \(g.layout) \(algorithm) "
                                    + "[\(capabilities)] threads \(threads)", tolerance: algorithm.winogradTile != nil ? 1e-4 : 2e-5)
                    }
                }
            }
        }
    }

    func testDepthwiseMatchesReferenceAtEveryLevel() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            try check(Self.depthwiseCases(layout), label: "depthwise")
        }
    }

    func testGroupedMatchesReferenceAtEveryLevel() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            try check(Self.groupedCases(layout), label: "grouped")
        }
    }

    /// The depthwise and grouped kernels' work splits (bands of rows, channel blocks, pairs of
    /// rows) change which thread computes an output, never how: the bits are the same at 1, 2 and
    /// 3 threads.
    func testDirectGroupedResultsDoNotDependOnThreadCount() throws {
        let cases = [ActivationLayout.nhwc, .nchw].flatMap { layout in
            Self.depthwiseCases(layout).filter { layout == .nhwc || $0.geometry.inputChannels == $0.geometry.outputChannels }
                .map { ($0, Conv2DAlgorithm.depthwise) }
        } + Self.groupedCases(.nhwc).map { ($0, Conv2DAlgorithm.grouped) }
        for (index, (testCase, algorithm)) in cases.enumerated() {
            let operands = Operands(testCase, seed: UInt64(31 * index + 5))
            let weights = try Self.packed(testCase, operands)
            let g = testCase.geometry
            let outputs = try [1, 2, 3].map { threads in
                let scratchCount = Conv2D.scratchSize(for: g, algorithm: algorithm, threads: threads)
                return try convolve(testCase, operands, scratchCount: scratchCount) {
                    input, bias, residual, output, scratch in
                    try Conv2D.apply(input: input, weights: weights, bias: bias, residual: residual,
                                     activation: testCase.activation, output: output, geometry: g, scratch: scratch,
                                     algorithm: algorithm, context: KernelContext(threads: threads))
                }
            }
            for threads in 1..<outputs.count {
                XCTAssertEqual(outputs[threads].map(\.bitPattern), outputs[0].map(\.bitPattern),
                               "\(algorithm) case \(index) \(g.layout): \(threads + 1) threads against 1")
            }
        }
    }

    func testGEMMPathsMatchReferenceAtEveryLevel() throws {
        for layout in [ActivationLayout.nhwc, .nchw] {
            try check(Self.gemmCases(layout), label: "gemm")
        }
    }

    func testAlgorithmChoice() {
        let depthwise = Self.geometry(12, 12, in: 32, out: 32, groups: 32, layout: .nchw)
        let grouped = Self.geometry(12, 12, in: 32, out: 32, groups: 4, layout: .nhwc)
        let unequalGroups = Self.geometry(12, 12, in: 32, out: 64, groups: 4, layout: .nhwc)
        let multiplier = Self.geometry(12, 12, in: 32, out: 64, groups: 32, layout: .nhwc)
        let multiplierNCHW = Self.geometry(12, 12, in: 32, out: 64, groups: 32, layout: .nchw)
        forEachCapabilitySet { capabilities in
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: depthwise), capabilities.isEmpty ? .im2colGEMM : .depthwise)
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: grouped), capabilities.isEmpty ? .im2colGEMM : .grouped)
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: unequalGroups), .im2colGEMM)
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: multiplier), capabilities.isEmpty ? .im2colGEMM : .depthwise)
            XCTAssertEqual(Conv2D.defaultAlgorithm(for: multiplierNCHW), .im2colGEMM)
        }
        XCTAssertEqual(Conv2D.defaultAlgorithm(for: Self.geometry(30, 30, in: 16, out: 16, layout: .nhwc)), .winograd(.large))
    }

    /// bf16 rounds inputs and weights to 8 significant bits: within 2⁻⁸ of the reduction's
    /// magnitude (the sum of |input·weight|), accumulated in fp32.
    func testBF16MatchesTheNaiveConvolutionWithinRounding() throws {
        var checked = 0
        try forEachCapabilitySet(testing: "convolution (bf16)") { capabilities in
            guard BF16Convolution.isAvailable else { return }
            let cases = Self.gemmCases(.nhwc) + Self.depthwiseCases(.nhwc)
            for (index, testCase) in cases.enumerated() where BF16Convolution.supports(testCase.geometry) {
                let geometry = testCase.geometry
                let operands = Operands(testCase, seed: UInt64(7 + index))
                let weights = try BF16Weights(try Self.packed(testCase, operands))
                let scratchCount = BF16Convolution.scratchSize(for: geometry, threads: 2)
                let actual = try convolve(testCase, operands, scratchCount: scratchCount) { input, bias, residual, output, scratch in
                    try BF16Convolution.apply(input: input, weights: weights, bias: bias, residual: residual,
                                              activation: testCase.activation, output: output, geometry: geometry,
                                              scratch: scratch, context: KernelContext(threads: 2))
                }
                let reference = operands.expected
                let reduction = Float(geometry.kernel.height * geometry.kernel.width * geometry.inputChannelsPerGroup)
                let worst = zip(actual, reference).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, reduction / 256, "bf16 case \(index) [\(capabilities)]")
                XCTAssertEqual(actual.count, reference.count)
                checked += 1
            }
        }
        if !CPUCapabilities.detected.contains(.avx512BF16) {
            print("convolution (bf16): skipped: this CPU has neither AVX512_BF16 nor AMX-BF16")
        } else {
            XCTAssertGreaterThan(checked, 0, "no case ran on the bf16 kernels")
        }
    }
}
