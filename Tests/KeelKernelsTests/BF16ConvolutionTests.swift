/// The bf16 convolution and dense kernels at every bf16 capability this CPU has (AMX tiles, and
/// AVX512_BF16 with AMX masked), against a double-precision reference over the same inputs and
/// weights rounded to bf16 here: products of bf16 values are exact in fp32, so only the fp32
/// summation order differs and the bound is tight. Awkward sizes: depths that are not multiples
/// of 32, column counts that are not multiples of 16, 1×1 images, a single row. A layer of few
/// input channels splits each input value in two bf16 terms: its reference takes the input as it
/// is, and the bound adds what the second term's rounding leaves (2⁻¹⁷ of each product).
@testable import KeelKernels
import XCTest

final class BF16ConvolutionTests: XCTestCase {
    func bf16(_ x: Float) -> Float { roundedToBF16(x) }

    struct Case {
        var geometry: Conv2DGeometry
        var activation: UnaryOperation
        var bias: Bool
        /// A shortcut added before the activation (ResNet's residual convolutions).
        var residual = false
    }

    static let cases: [Case] = [
        // Depth 45 (3×3×5), 20 columns, padding, batch 2.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(7, 6), inputChannels: 5, outputChannels: 20,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true, residual: true),
        // Padding beyond the filter's reach: output row 0 sees only padding (the bias alone),
        // rows 1, 2, 4 and 5 skip the kernel rows that fall on it; 5 channels put the skipped
        // ranges' bounds inside a bf16 pair.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(3, 4), inputChannels: 5, outputChannels: 12,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 3, left: 1, bottom: 2, right: 1)),
             activation: .identity, bias: true, residual: true),
        // Rows dilated by 2 and strided by 2 over asymmetric padding: the kernel rows inside the
        // input change from one output row to the next at both ends.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(7, 5), inputChannels: 8, outputChannels: 20,
                                      kernel: Size2D(3, 3), stride: Size2D(2, 1), dilation: Size2D(2, 1),
                                      padding: Padding2D(top: 3, left: 1, bottom: 2, right: 1)),
             activation: .relu, bias: true),
        // A 1×1 image through a 3×3 filter with padding: only the centre tap reads the image.
        Case(geometry: Conv2DGeometry(batch: 3, input: Size2D(1, 1), inputChannels: 33, outputChannels: 17,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .identity, bias: false),
        // Stride 2, dilation, several column blocks and more rows than one 32-row group.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(19, 23), inputChannels: 40, outputChannels: 70,
                                      kernel: Size2D(3, 3), stride: Size2D(2, 2), dilation: Size2D(1, 2),
                                      padding: Padding2D(top: 1, left: 2, bottom: 1, right: 2)),
             activation: .relu, bias: true),
        // A dense layer: one row, depth 70, 37 outputs, a sigmoid in the kernel's epilogue.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(1, 1), inputChannels: 70, outputChannels: 37,
                                      kernel: Size2D(1, 1)),
             activation: .sigmoid, bias: true, residual: true),
        // The epilogue's other activations: ReLU6 on a MobileNet expansion (16 → 40 channels, 14
        // pixels: a block of 14 rows), swish on a strided EfficientNet-like layer, hard-swish with a
        // residual, GELU on a 1×1 layer wider than one column block, and one no kernel fuses (ELU,
        // left to a pass over the fp32 output).
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(1, 7), inputChannels: 16, outputChannels: 40,
                                      kernel: Size2D(1, 1)),
             activation: .clip(min: 0, max: 6), bias: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(9, 8), inputChannels: 24, outputChannels: 36,
                                      kernel: Size2D(3, 3), stride: Size2D(2, 2),
                                      padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .swish, bias: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(5, 5), inputChannels: 48, outputChannels: 20,
                                      kernel: Size2D(1, 1)),
             activation: .hardSwish, bias: true, residual: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(4, 6), inputChannels: 64, outputChannels: 72,
                                      kernel: Size2D(1, 1)),
             activation: .gelu, bias: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(3, 3), inputChannels: 32, outputChannels: 24,
                                      kernel: Size2D(1, 1)),
             activation: .elu(alpha: 1), bias: true),
        // The direct form (stride 1, input channels a multiple of 32, rows filling 3/4 of their
        // 16-pixel tiles; AMX): rows of 30 pixels (one full and one partial tile), of 13 (one
        // partial tile, pairs spanning rows and images); a 1×1 image goes to im2col.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(5, 30), inputChannels: 64, outputChannels: 48,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true, residual: true),
        Case(geometry: Conv2DGeometry(batch: 3, input: Size2D(6, 15), inputChannels: 32, outputChannels: 16,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 0, left: 0, bottom: 0, right: 0)),
             activation: .identity, bias: false),
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(1, 1), inputChannels: 64, outputChannels: 20,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        // Three 16-pixel tiles per row (the last partial): tile pairs straddle rows.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(3, 40), inputChannels: 32, outputChannels: 33,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        // Rows of 18 padded pixels × 2048 channels: a window of input rows (1 MB) holds 12 output
        // rows, so the direct form converts and computes this image in two windows.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(14, 12), inputChannels: 2048, outputChannels: 20,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true, residual: true),
        // Windows span images: 14 padded rows of 2048 channels hold images 0 and 1 (5 padded rows
        // each) and the first two rows of image 2; the next window takes its last row.
        Case(geometry: Conv2DGeometry(batch: 3, input: Size2D(3, 12), inputChannels: 2048, outputChannels: 20,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true, residual: true),
        // Depth 4608 takes 96-row im2col blocks (1 MB): the 144 pixels need two.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(24, 24), inputChannels: 512, outputChannels: 16,
                                      kernel: Size2D(3, 3), stride: Size2D(2, 2),
                                      padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        // An RGB stem (ResNet's 7×7, stride 2, padding 3; input split): each kernel row's taps
        // are converted as one run, clipped at both image edges; depth 2 · 147 = 294.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(9, 11), inputChannels: 3, outputChannels: 18,
                                      kernel: Size2D(7, 7), stride: Size2D(2, 2),
                                      padding: Padding2D(top: 3, left: 3, bottom: 3, right: 3)),
             activation: .relu, bias: true),
        // VGG's 3×3 RGB first layer (split, depth 54) over 40 rows of 35 pixels: several 32-row
        // groups, 64 columns; and a dilated 4-channel layer, whose taps are read one by one.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(40, 35), inputChannels: 3, outputChannels: 64,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true, residual: true),
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(6, 7), inputChannels: 4, outputChannels: 20,
                                      kernel: Size2D(3, 3), dilation: Size2D(2, 2),
                                      padding: Padding2D(top: 2, left: 2, bottom: 2, right: 2)),
             activation: .identity, bias: false),
        // A dense layer of 3 features (split) over 2 rows: AMX hands so few pixels to AVX512_BF16.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(1, 1), inputChannels: 3, outputChannels: 5,
                                      kernel: Size2D(1, 1)),
             activation: .identity, bias: true),
        // A split kernel row of 9 taps × 4 channels (36 values: two 32-value copy passes), stride 2.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(5, 20), inputChannels: 4, outputChannels: 33,
                                      kernel: Size2D(2, 9), stride: Size2D(1, 2),
                                      padding: Padding2D(top: 1, left: 4, bottom: 0, right: 4)),
             activation: .relu, bias: true),
        // A 1×1 convolution over 98 pixels of 64 channels: a bf16 input is read in place for
        // three 32-row groups, the last 2 rows copied.
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(7, 7), inputChannels: 64, outputChannels: 48,
                                      kernel: Size2D(1, 1)),
             activation: .relu, bias: true, residual: true),
        // 1×1 layers over more pixels than one 512-row block: 32 channels (a bf16 input read in
        // place, an fp32 one converted as one run) and 40 (rows copied one by one, depth padded).
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(20, 15), inputChannels: 32, outputChannels: 40,
                                      kernel: Size2D(1, 1)),
             activation: .relu, bias: true, residual: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(23, 23), inputChannels: 40, outputChannels: 24,
                                      kernel: Size2D(1, 1)),
             activation: .relu, bias: false),
        // Deep enough for 32-row im2col blocks over several 512-wide column runs.
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(9, 9), inputChannels: 96, outputChannels: 130,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
    ]

    /// Runs every case with the kernel table filled from `capabilities`.
    func check(_ capabilities: CPUCapabilities, label: String) throws {
        CPUCapabilities.restrict(to: capabilities)
        defer { CPUCapabilities.restoreDetected() }
        XCTAssertTrue(BF16Convolution.isAvailable, label)
        for (index, testCase) in Self.cases.enumerated() {
            let geometry = testCase.geometry
            try geometry.validate()
            let depth = geometry.reductionLength, columns = geometry.outputChannels
            let input = seededValues(geometry.inputElementCount, seed: UInt64(11 + index))
            // HWIO = [depth][columns], the order the kernels reduce in.
            let filter = seededValues(depth * columns, seed: UInt64(97 + index))
            let bias = testCase.bias ? seededValues(columns, seed: UInt64(5 + index)) : nil
            let residual = seededValues(testCase.residual ? geometry.outputElementCount : 0, seed: UInt64(71 + index))
            let split = BF16Convolution.splitsInput(inputChannels: geometry.inputChannels)
            let weights = try filter.withUnsafeBufferPointer {
                try BF16Weights($0, depth: depth, columns: columns, depthStride: columns, columnStride: 1, splitInput: split)
            }
            XCTAssertEqual(weights.depth, split ? 2 * depth : depth)
            let (expected, magnitude) = Self.reference(testCase, input: split ? input : input.map(bf16),
                                                  filter: filter.map(bf16), bias: bias,
                                                  residual: testCase.residual ? residual : nil)
            for threads in [1, 2] {
                var scratch = [Float](repeating: .nan, count: BF16Convolution.scratchSize(for: geometry, threads: threads))
                let actual = try withOutput(geometry.outputElementCount) { output in
                    try input.withUnsafeBufferPointer { source in
                        try scratch.withUnsafeMutableBufferPointer { work in
                            try (bias ?? []).withUnsafeBufferPointer { biasValues in
                                try residual.withUnsafeBufferPointer { shortcut in
                                    try BF16Convolution.apply(input: source, weights: weights,
                                                              bias: bias == nil ? nil : biasValues,
                                                              residual: testCase.residual ? shortcut : nil,
                                                              activation: testCase.activation, output: output,
                                                              geometry: geometry, scratch: work,
                                                              context: KernelContext(threads: threads))
                                }
                            }
                        }
                    }
                }
                for position in 0..<expected.count {
                    // fp32 sums of exact products: a few ulps of the sum of magnitudes per add
                    // (twice the adds when split, plus 2⁻¹⁷ of each product the split leaves).
                    // The activations' fp32 forms add a few ulps of their value (GELU up to 9e-7).
                    let bound = Double(weights.depth) * 1.2e-7 * magnitude[position] + 1e-7
                        + (split ? 0x1p-17 * magnitude[position] : 0)
                        + (testCase.activation == .relu || testCase.activation == .identity
                            ? 0 : 5e-7 * abs(expected[position]) + 1e-6)
                    XCTAssertEqual(Double(actual[position]), expected[position], accuracy: bound,
                                   "\(label) case \(index) threads \(threads) at \(position)")
                }
            }
        }
    }

    /// Double-precision convolution of the rounded values, then bias, residual and activation; also
    /// the sum of |products| per output, which bounds the summation error. Grouped (a depthwise
    /// layer: one input channel per group) with the filter [kh][kw][input channels per group][columns].
    static func reference(_ testCase: Case, input: [Float], filter: [Float], bias: [Float]?,
                          residual: [Float]? = nil) -> ([Double], [Double]) {
        let g = testCase.geometry, out = g.output, columns = g.outputChannels
        let perGroup = g.inputChannels / g.groups, outputsPerGroup = columns / g.groups
        var values = [Double](), magnitudes = [Double]()
        for image in 0..<g.batch {
            for y in 0..<out.height {
                for x in 0..<out.width {
                    for o in 0..<columns {
                        var sum = 0.0, magnitude = 0.0
                        for ky in 0..<g.kernel.height {
                            let iy = y * g.stride.height - g.padding.top + ky * g.dilation.height
                            for kx in 0..<g.kernel.width {
                                let ix = x * g.stride.width - g.padding.left + kx * g.dilation.width
                                guard iy >= 0, iy < g.input.height, ix >= 0, ix < g.input.width else { continue }
                                for c in 0..<perGroup {
                                    let channel = o / outputsPerGroup * perGroup + c
                                    let a = Double(input[((image * g.input.height + iy) * g.input.width + ix) * g.inputChannels
                                                         + channel])
                                    let w = Double(filter[((ky * g.kernel.width + kx) * perGroup + c) * columns + o])
                                    sum += a * w
                                    magnitude += abs(a * w)
                                }
                            }
                        }
                        sum += Double(bias?[o] ?? 0)
                        let shortcut = Double(residual?[values.count] ?? 0)
                        sum += shortcut
                        sum = Self.activated(sum, testCase.activation)
                        values.append(sum)
                        magnitudes.append(magnitude + abs(Double(bias?[o] ?? 0)) + abs(shortcut))
                    }
                }
            }
        }
        return (values, magnitudes)
    }

    /// `activation` of `x` in double precision, from its definition.
    static func activated(_ x: Double, _ activation: UnaryOperation) -> Double {
        switch activation {
        case .identity: return x
        case .relu: return max(x, 0)
        case let .clip(lower, upper): return min(max(x, Double(lower)), Double(upper))
        case .sigmoid: return 1 / (1 + exp(-x))
        case .swish: return x / (1 + exp(-x))
        case .hardSwish: return x * min(1, max(0, x / 6 + 0.5))
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case let .elu(alpha): return x > 0 ? x : Double(alpha) * (exp(x) - 1)
        default: preconditionFailure("no reference for \(activation)")
        }
    }

    /// The direct form with its fused 2×2 max pool: odd heights and widths (floor mode drops the
    /// last row or column), a row wider than one 16-pixel tile, one pooled row, batch 2, an
    /// image whose 7 pooled rows take two windows of input rows, and windows spanning images.
    static let pooledCases: [Case] = [
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(5, 29), inputChannels: 64, outputChannels: 48,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(14, 14), inputChannels: 32, outputChannels: 40,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .identity, bias: false),
        Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(3, 13), inputChannels: 32, outputChannels: 17,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(15, 12), inputChannels: 2048, outputChannels: 20,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
        // A window of 14 padded rows holds image 0's 3 pooled rows and two of image 1's.
        Case(geometry: Conv2DGeometry(batch: 3, input: Size2D(6, 12), inputChannels: 2048, outputChannels: 20,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
             activation: .relu, bias: true),
    ]

    func testAMXDirectFormFusesTheMaxPool() throws {
        guard CPUCapabilities.detected.contains(.amxBF16) else {
            throw XCTSkip("this CPU (or Linux, which grants the tile state) offers no AMX-BF16")
        }
        for (index, testCase) in Self.pooledCases.enumerated() {
            let geometry = testCase.geometry, columns = geometry.outputChannels, depth = geometry.reductionLength
            XCTAssertTrue(BF16Convolution.poolsInKernel(geometry), "case \(index)")
            let input = seededValues(geometry.inputElementCount, seed: UInt64(31 + index))
            let filter = seededValues(depth * columns, seed: UInt64(61 + index))
            let bias = seededValues(columns, seed: UInt64(3 + index))
            let weights = try filter.withUnsafeBufferPointer {
                try BF16Weights($0, depth: depth, columns: columns, depthStride: columns, columnStride: 1)
            }
            let (full, magnitude) = Self.reference(testCase, input: input.map(bf16), filter: filter.map(bf16),
                                              bias: testCase.bias ? bias : nil)
            let out = geometry.output, pooled = Size2D(out.height / 2, out.width / 2)
            for threads in [1, 2] {
                var scratch = [Float](repeating: .nan, count: BF16Convolution.scratchSize(for: geometry, threads: threads))
                let actual = try withOutput(geometry.batch * pooled.height * pooled.width * columns) { output in
                    try input.withUnsafeBufferPointer { source in
                        try scratch.withUnsafeMutableBufferPointer { work in
                            try bias.withUnsafeBufferPointer {
                                try BF16Convolution.apply(input: source, weights: weights, bias: testCase.bias ? $0 : nil,
                                                          activation: testCase.activation, output: output,
                                                          geometry: geometry, scratch: work, maxPooled: true,
                                                          context: KernelContext(threads: threads))
                            }
                        }
                    }
                }
                for image in 0..<geometry.batch {
                    for y in 0..<pooled.height {
                        for x in 0..<pooled.width {
                            for o in 0..<columns {
                                let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map {
                                    ((image * out.height + 2 * y + $0.0) * out.width + 2 * x + $0.1) * columns + o
                                }
                                let expected = window.map { full[$0] }.max() ?? 0
                                let bound = Double(depth) * 1.2e-7 * (window.map { magnitude[$0] }.max() ?? 0) + 1e-7
                                let position = ((image * pooled.height + y) * pooled.width + x) * columns + o
                                XCTAssertEqual(Double(actual[position]), expected, accuracy: bound,
                                               "case \(index) threads \(threads) at \(position)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Narrow rows (a dense layer's 1×1 images, ResNet's 7×7) would leave most of each 16-pixel
    /// tile idle in the direct form: they go to im2col, which packs pixels of several rows.
    func testNarrowImagesTakeTheIm2colForm() throws {
        guard CPUCapabilities.detected.contains(.amxBF16) else {
            throw XCTSkip("this CPU (or Linux, which grants the tile state) offers no AMX-BF16")
        }
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        let forms = [(1, 3136), (7, 512), (12, 64), (14, 512), (56, 64)].map { width, channels in
            BF16Convolution.form(for: Conv2DGeometry(batch: 1, input: Size2D(width, width), inputChannels: channels,
                                                     outputChannels: 64, kernel: Size2D(3, 3), padding: same))
        }
        XCTAssertEqual(forms, ["im2col", "im2col", "direct", "direct", "direct"])
        // A dense layer at batch ≤ 4 runs on vdpbf16ps: the tiles would be mostly padding.
        let sets = [4, 5].map { rows in
            BF16Convolution.instructionSet(for: Conv2DGeometry(batch: rows, input: Size2D(1, 1), inputChannels: 512,
                                                               outputChannels: 64, kernel: Size2D(1, 1)))
        }
        XCTAssertEqual(sets, ["AVX512_BF16", "AMX-BF16"])
    }

    func testAMXTilesMatchTheReference() throws {
        guard CPUCapabilities.detected.contains(.amxBF16) else {
            throw XCTSkip("this CPU (or Linux, which grants the tile state) offers no AMX-BF16")
        }
        try check(CPUCapabilities.detected, label: "AMX")
    }

    func testAVX512BF16MatchesTheReference() throws {
        guard CPUCapabilities.detected.contains(.avx512BF16) else {
            throw XCTSkip("this CPU has no AVX512_BF16")
        }
        try check(CPUCapabilities.detected.subtracting(.amxBF16), label: "AVX512_BF16")
    }

    /// A NaN input pixel gives NaN outputs at that pixel through the fused ReLU (as ONNX Runtime's
    /// Relu keeps NaN), at every bf16 capability, both forms; the other pixels stay finite.
    func testANaNInputStaysNaNThroughTheFusedReLU() throws {
        let levels: [(CPUCapabilities, String)] = [(CPUCapabilities.detected, "detected"),
                                                   (CPUCapabilities.detected.subtracting(.amxBF16), "AVX512_BF16")]
        let geometries = [Conv2DGeometry(batch: 1, input: Size2D(4, 16), inputChannels: 32, outputChannels: 16,
                                         kernel: Size2D(1, 1)),
                          Conv2DGeometry(batch: 1, input: Size2D(4, 16), inputChannels: 32, outputChannels: 16,
                                         kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))]
        for (capabilities, label) in levels where capabilities.contains(.avx512BF16) {
            CPUCapabilities.restrict(to: capabilities)
            defer { CPUCapabilities.restoreDetected() }
            for geometry in geometries {
                var input = seededValues(geometry.inputElementCount, seed: 3)
                input[5 * geometry.inputChannels + 7] = .nan
                let weights = try seededValues(geometry.reductionLength * geometry.outputChannels, seed: 4)
                    .withUnsafeBufferPointer {
                        try BF16Weights($0, depth: geometry.reductionLength, columns: geometry.outputChannels,
                                        depthStride: geometry.outputChannels, columnStride: 1)
                    }
                var scratch = [Float](repeating: 0, count: BF16Convolution.scratchSize(for: geometry, threads: 1))
                let output = try withOutput(geometry.outputElementCount) { output in
                    try input.withUnsafeBufferPointer { source in
                        try scratch.withUnsafeMutableBufferPointer { work in
                            try BF16Convolution.apply(input: source, weights: weights, bias: nil, activation: .relu,
                                                      output: output, geometry: geometry, scratch: work,
                                                      context: .singleThreaded)
                        }
                    }
                }
                let pixel = Array(output[(5 * 16)..<(6 * 16)])
                XCTAssertTrue(pixel.allSatisfy(\.isNaN), "\(label) \(geometry.kernel): \(pixel)")
                XCTAssertTrue(output.filter(\.isNaN).count <= 9 * 16, "\(label) \(geometry.kernel)")
            }
        }
    }

    func testWithoutBF16CapabilitiesTheKernelIsAbsentAndApplyRefuses() throws {
        CPUCapabilities.restrict(to: [.avx2, .avx512])
        defer { CPUCapabilities.restoreDetected() }
        XCTAssertFalse(BF16Convolution.isAvailable)
        let geometry = Self.cases[0].geometry
        let weights = try [Float](repeating: 1, count: geometry.reductionLength * geometry.outputChannels)
            .withUnsafeBufferPointer {
                try BF16Weights($0, depth: geometry.reductionLength, columns: geometry.outputChannels,
                                depthStride: geometry.outputChannels, columnStride: 1)
            }
        var scratch = [Float](repeating: 0, count: BF16Convolution.scratchSize(for: geometry, threads: 1))
        let input = [Float](repeating: 1, count: geometry.inputElementCount)
        XCTAssertThrowsError(try withOutput(geometry.outputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { work in
                    try BF16Convolution.apply(input: source, weights: weights, bias: nil, activation: .identity,
                                              output: output, geometry: geometry, scratch: work, context: .singleThreaded)
                }
            }
        })
    }

    /// Rounding is to nearest, ties to even, and NaN stays NaN.
    func testPackingRoundsToNearestEven() throws {
        // 1 + 2⁻⁸ is halfway between bf16 neighbours 1 and 1 + 2⁻⁷: ties to the even one, 1.
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: ties to 1 + 2⁻⁶.
        let values: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -2.5, .nan]
        let expected: [Float] = [1, 1 + 0x1p-6, 1 + 0x1p-7, -2.5]
        XCTAssertEqual(values.prefix(4).map(bf16), expected)
        let weights = try values.withUnsafeBufferPointer {
            try BF16Weights($0, depth: values.count, columns: 1, depthStride: 1, columnStride: 1)
        }
        // Column 0 of tile row j holds depth 2j and 2j+1.
        let stored: [UInt16] = weights.withUnsafeSlots { slots in
            slots.withMemoryRebound(to: UInt16.self) { packed in (0..<values.count).map { packed[($0 / 2) * 32 + $0 % 2] } }
        }
        XCTAssertEqual(stored.prefix(4).map { Float(bitPattern: UInt32($0) << 16) }, expected)
        XCTAssertTrue(Float(bitPattern: UInt32(stored[4]) << 16).isNaN)
    }
}
