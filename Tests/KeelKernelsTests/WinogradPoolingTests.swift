/// Winograd (both tiles) with the 2×2 stride-2 max pool fused into its output pass, against the im2col
/// convolution followed by the separate max-pool kernel: odd image sizes (the last row or column
/// is dropped), batch 2, the SIMD epilogue (identity, ReLU) and the Swift one (sigmoid), at every
/// SIMD level and with one and two threads.
import KeelKernels
import XCTest

final class WinogradPoolingTests: XCTestCase {
    func testFusedPoolMatchesConvolutionThenPool() throws {
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        let shapes: [(batch: Int, height: Int, width: Int, inputs: Int, outputs: Int)] = [
            (2, 7, 9, 19, 21), (1, 8, 8, 16, 32), (1, 13, 6, 24, 40), (2, 5, 5, 17, 16),
        ]
        for (index, shape) in shapes.enumerated() {
            let geometry = Conv2DGeometry(batch: shape.batch, input: Size2D(shape.height, shape.width),
                                          inputChannels: shape.inputs, outputChannels: shape.outputs,
                                          kernel: Size2D(3, 3), padding: same, layout: .nhwc)
            let pooled = Size2D(shape.height / 2, shape.width / 2)
            let poolGeometry = Pool2DGeometry(batch: shape.batch, channels: shape.outputs, input: geometry.output,
                                              output: pooled, window: Size2D(2, 2), stride: Size2D(2, 2))
            let seed = UInt64(300 + 10 * index)
            let input = seededValues(geometry.inputElementCount, seed: seed)
            let hwio = seededValues(9 * shape.inputs * shape.outputs, seed: seed + 1)
            let bias = seededValues(shape.outputs, seed: seed + 2)
            let packed = try hwio.withUnsafeBufferPointer {
                try PackedConv2DWeights(hwio: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: shape.inputs,
                                        outputChannels: shape.outputs)
            }
            let transformed = try WinogradTile.allCases.map { try WinogradWeights(packed, tile: $0) }
            // Winograd's error follows the magnitude of the pre-activation tile (measured with identity first).
            var scale: Float = 1
            for activation in [UnaryOperation.identity, .relu, .sigmoid] {
                var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: geometry, algorithm: .im2colGEMM))
                let convolved = try withOutput(geometry.outputElementCount) { output in
                    try input.withUnsafeBufferPointer { source in
                        try bias.withUnsafeBufferPointer { biasBuffer in
                            try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                                try Conv2D.apply(input: source, weights: packed, bias: biasBuffer, activation: activation,
                                                 output: output, geometry: geometry, scratch: scratchBuffer,
                                                 algorithm: .im2colGEMM)
                            }
                        }
                    }
                }
                if activation == .identity { scale = max(1, convolved.map { abs($0) }.max() ?? 1) }
                let reference = try withOutput(geometry.pooledOutputElementCount) { output in
                    try convolved.withUnsafeBufferPointer {
                        try Pooling.maxPool(input: $0, output: output, geometry: poolGeometry)
                    }
                }
                try forEachCapabilitySet { level in
                    for (threads, weights) in [(1, transformed[0]), (2, transformed[0]), (1, transformed[1]), (2, transformed[1])] {
                        var winogradScratch = [Float](repeating: .nan,
                                                      count: Conv2D.scratchSize(for: geometry, algorithm: .winograd(weights.tile),
                                                                                threads: threads))
                        let actual = try withOutput(geometry.pooledOutputElementCount) { output in
                            try input.withUnsafeBufferPointer { source in
                                try bias.withUnsafeBufferPointer { biasBuffer in
                                    try winogradScratch.withUnsafeMutableBufferPointer { scratchBuffer in
                                        try Conv2D.apply(input: source, weights: weights, bias: biasBuffer,
                                                         activation: activation, output: output, geometry: geometry,
                                                         scratch: scratchBuffer, maxPooled: true,
                                                         context: KernelContext(threads: threads))
                                    }
                                }
                            }
                        }
                        let error = zip(actual, reference).map { abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThanOrEqual(error, 1e-5 * scale,
                                                 "shape \(index) \(activation) \(weights.tile) \(level) threads \(threads)")
                    }
                }
            }
        }
    }

    func testFusedPoolRefusesNCHW() throws {
        let geometry = Conv2DGeometry(batch: 1, input: Size2D(4, 4), inputChannels: 16, outputChannels: 16,
                                      kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1),
                                      layout: .nchw)
        let packed = try [Float](repeating: 0.1, count: 9 * 16 * 16).withUnsafeBufferPointer {
            try PackedConv2DWeights(hwio: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: 16, outputChannels: 16)
        }
        let transformed = try WinogradWeights(packed)
        var scratch = [Float](repeating: 0, count: Conv2D.scratchSize(for: geometry, algorithm: .winograd(.large)))
        let input = [Float](repeating: 1, count: geometry.inputElementCount)
        XCTAssertThrowsError(try withOutput(geometry.pooledOutputElementCount) { output in
            try input.withUnsafeBufferPointer { source in
                try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                    try Conv2D.apply(input: source, weights: transformed, output: output, geometry: geometry,
                                     scratch: scratchBuffer, maxPooled: true)
                }
            }
        }) { error in
            XCTAssertTrue("\(error)".contains("a fused max pool needs NHWC activations"), "\(error)")
        }
    }
}
