/// NHWC convolutions that write their output pixels a wider row apart, straight into their slice of
/// a concatenation's buffer (`outputPixelStride`): panels (pointwise, grouped pointwise, im2col,
/// the input read in place, strided 1×1), both Winograd tiles and line Winograd, at every SIMD
/// level and with one and two threads, against the naive reference convolution; every float of
/// the buffer outside the slice keeps the value it had.
import KeelKernels
import XCTest

final class ConcatSliceOutputTests: XCTestCase {
    typealias Case = ConvolutionFamilyTests.Case

    /// A convolution and the algorithm that runs it.
    struct Layer {
        var testCase: Case
        var algorithm: Conv2DAlgorithm
    }

    /// What the buffer holds outside the slice before and after the convolution.
    static let untouched: Float = 1234.5

    static func geometry(batch: Int, _ height: Int, _ width: Int, in inputs: Int, out outputs: Int, kernel: Size2D,
                         stride: Int = 1, padding: Padding2D, groups: Int = 1) -> Conv2DGeometry {
        Conv2DGeometry(batch: batch, input: Size2D(height, width), inputChannels: inputs, outputChannels: outputs,
                       kernel: kernel, stride: Size2D(stride, stride), dilation: .one, padding: padding, groups: groups,
                       layout: .nhwc)
    }

    static let layers: [Layer] = {
        let none = Padding2D(top: 0, left: 0, bottom: 0, right: 0)
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        return [
            Layer(testCase: Case(geometry: geometry(batch: 2, 5, 7, in: 37, out: 45, kernel: .one, padding: none),
                                 activation: .relu, residual: false), algorithm: .pointwise),
            Layer(testCase: Case(geometry: geometry(batch: 1, 3, 3, in: 16, out: 24, kernel: .one, padding: none, groups: 2),
                                 activation: .identity, residual: false), algorithm: .pointwise),
            Layer(testCase: Case(geometry: geometry(batch: 2, 9, 9, in: 13, out: 20, kernel: Size2D(3, 3), stride: 2,
                                                    padding: same),
                                 activation: .swish, residual: false), algorithm: .im2colGEMM),
            // 40 columns: the 38 inner output columns read the input in place (`InPlaceRegion`).
            Layer(testCase: Case(geometry: geometry(batch: 2, 4, 40, in: 8, out: 24, kernel: Size2D(3, 3), padding: same),
                                 activation: .relu, residual: false), algorithm: .im2colGEMM),
            Layer(testCase: Case(geometry: geometry(batch: 2, 7, 7, in: 16, out: 33, kernel: .one, stride: 2, padding: none),
                                 activation: .identity, bias: false, residual: false), algorithm: .im2colGEMM),
            Layer(testCase: Case(geometry: geometry(batch: 2, 10, 11, in: 24, out: 40, kernel: Size2D(3, 3), padding: same),
                                 activation: .relu, residual: false), algorithm: .winograd(.large)),
            Layer(testCase: Case(geometry: geometry(batch: 1, 9, 6, in: 19, out: 21, kernel: Size2D(3, 3), padding: same),
                                 activation: .swish, residual: false), algorithm: .winograd(.small)),
            Layer(testCase: Case(geometry: geometry(batch: 2, 6, 17, in: 16, out: 20, kernel: Size2D(1, 7),
                                                    padding: Padding2D(top: 0, left: 3, bottom: 0, right: 3)),
                                 activation: .relu, residual: false), algorithm: .lineWinograd),
            Layer(testCase: Case(geometry: geometry(batch: 1, 13, 5, in: 12, out: 18, kernel: Size2D(7, 1),
                                                    padding: Padding2D(top: 3, left: 0, bottom: 3, right: 0)),
                                 activation: .identity, residual: false), algorithm: .lineWinograd),
            Layer(testCase: Case(geometry: geometry(batch: 2, 9, 7, in: 16, out: 24, kernel: Size2D(5, 5),
                                                    padding: Padding2D(top: 2, left: 2, bottom: 2, right: 2)),
                                 activation: .relu, residual: false), algorithm: .lineWinograd),
        ]
    }()

    /// Runs `layer` into a buffer of `pixelStride`-float rows, its channels from float `first` of each.
    static func run(_ layer: Layer, _ operands: ConvolutionFamilyTests.Operands, pixelStride: Int, first: Int,
                    threads: Int, residual: Bool = false) throws -> [Float] {
        let (testCase, g) = (layer.testCase, layer.testCase.geometry)
        let pixels = g.batch * g.output.height * g.output.width
        var buffer = [Float](repeating: untouched, count: pixels * pixelStride)
        var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: g, algorithm: layer.algorithm, threads: threads))
        let packed = try ConvolutionFamilyTests.packed(testCase, operands)
        let context = KernelContext(threads: threads)
        let shortcut = [Float](repeating: 1, count: g.outputElementCount)
        try operands.input.withUnsafeBufferPointer { input in
            try (operands.bias ?? []).withUnsafeBufferPointer { biasValues in
                try shortcut.withUnsafeBufferPointer { shortcut in
                    try scratch.withUnsafeMutableBufferPointer { scratch in
                        try buffer.withUnsafeMutableBufferPointer { whole in
                            let output = UnsafeMutableBufferPointer(rebasing: whole[first...])
                            let bias = operands.bias == nil ? nil : biasValues
                            let residual = residual ? shortcut : nil
                            switch layer.algorithm {
                            case .winograd(let tile):
                                try Conv2D.apply(input: input, weights: try WinogradWeights(packed, tile: tile), bias: bias,
                                                 residual: residual, activation: testCase.activation, output: output,
                                                 geometry: g, scratch: scratch, outputPixelStride: pixelStride,
                                                 context: context)
                            case .lineWinograd:
                                try Conv2D.apply(input: input, weights: try LineWinogradWeights(packed), bias: bias,
                                                 residual: residual, activation: testCase.activation, output: output,
                                                 geometry: g, scratch: scratch, outputPixelStride: pixelStride,
                                                 context: context)
                            default:
                                try Conv2D.apply(input: input, weights: try PanelConv2DWeights(packed, layout: .nhwc),
                                                 bias: bias, residual: residual, activation: testCase.activation,
                                                 output: output, geometry: g, scratch: scratch,
                                                 algorithm: layer.algorithm, outputPixelStride: pixelStride,
                                                 context: context)
                            }
                        }
                    }
                }
            }
        }
        return buffer
    }

    func testEveryAlgorithmWritesOnlyItsSliceAndMatchesTheReference() throws {
        for (index, layer) in Self.layers.enumerated() {
            let g = layer.testCase.geometry
            let operands = ConvolutionFamilyTests.Operands(layer.testCase, seed: UInt64(31 * index + 7))
            // The slice: channels 5 ..< 5 + outputs of rows of outputs + 11 floats.
            let (first, pixelStride) = (5, g.outputChannels + 11)
            try forEachCapabilitySet { level in
                for threads in [1, 2] {
                    let label = "layer \(index) (\(layer.algorithm)) on \(level), \(threads) thread(s)"
                    let buffer = try Self.run(layer, operands, pixelStride: pixelStride, first: first, threads: threads)
                    var slice: [Float] = []
                    for (position, value) in buffer.enumerated() {
                        let channel = position % pixelStride - first
                        if (0..<g.outputChannels).contains(channel) {
                            slice.append(value)
                        } else if value != Self.untouched {
                            XCTFail("\(label): float \(position), outside the slice, became \(value)")
                            break
                        }
                    }
                    // Winograd's transforms round more than a plain sum (its own tests allow 1e-4 too).
                    let winograd = layer.algorithm.winogradTile != nil || layer.algorithm == .lineWinograd
                    assertClose(slice, operands.expected, label, tolerance: winograd ? 1e-4 : 2e-5)
                }
            }
        }
    }

    func testAStridedOutputThatCannotBeHonouredIsRefused() throws {
        let pointwise = Self.layers[0]
        let operands = ConvolutionFamilyTests.Operands(pointwise.testCase, seed: 3)
        let channels = pointwise.testCase.geometry.outputChannels
        XCTAssertThrowsError(try Self.run(pointwise, operands, pixelStride: channels - 1, first: 0, threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("strided output"), "\(error)")
        }
        for layer in [pointwise, Self.layers[5], Self.layers[7]] {
            XCTAssertThrowsError(try Self.run(layer, seeded(layer), pixelStride: channels + 3, first: 0, threads: 1,
                                              residual: true), "\(layer.algorithm)") { error in
                XCTAssertTrue("\(error)".contains("strided output"), "\(error)")
            }
        }
        // Line Winograd fuses ReLU alone into its output transform.
        var swish = Self.layers[7]
        swish.testCase.activation = .swish
        XCTAssertThrowsError(try Self.run(swish, seeded(swish), pixelStride: 40, first: 0, threads: 1)) { error in
            XCTAssertTrue("\(error)".contains("ReLU only"), "\(error)")
        }
    }

    private func seeded(_ layer: Layer) -> ConvolutionFamilyTests.Operands {
        ConvolutionFamilyTests.Operands(layer.testCase, seed: 9)
    }
}
