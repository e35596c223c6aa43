/// Dense layers (from the kernel matrix: Keel's panel GEMM for in_out kernels, OpenBLAS for out_in;
/// and from the kernel packed once into panels, either layout) at every capability set this CPU has, against a naive double-precision product on awkward sizes: odd features,
/// one row, one input feature, with bias, residual and activation.
import KeelKernels
import XCTest

final class DenseFamilyTests: XCTestCase {
    /// (rows, in, out): a single row and feature, widths off every panel size, a tall odd block,
    /// deep reductions.
    static let sizes = [(1, 1, 1), (1, 13, 37), (3, 17, 5), (7, 64, 33), (29, 3, 65), (2, 257, 31), (1, 300, 70),
                        (5, 17, 33), (9, 700, 40)]
    /// Activations the epilogue applies in the kernel (ReLU) and after it.
    static let activations: [UnaryOperation] = [.identity, .relu, .sigmoid, .swish, .gelu]

    static func reference(_ input: [Float], _ kernel: [Float], layout: DenseWeightLayout, rows: Int, inFeatures: Int,
                          outFeatures: Int, bias: [Float], residual: [Float], activation: UnaryOperation) -> [Float] {
        var output = [Float](repeating: 0, count: rows * outFeatures)
        for row in 0..<rows {
            for column in 0..<outFeatures {
                var sum = Double(bias[column]) + Double(residual[row * outFeatures + column])
                for k in 0..<inFeatures {
                    let weight = layout == .inOut ? kernel[k * outFeatures + column] : kernel[column * inFeatures + k]
                    sum += Double(input[row * inFeatures + k]) * Double(weight)
                }
                output[row * outFeatures + column] = Float(NaiveConvolution.activate(sum, activation))
            }
        }
        return output
    }

    func testDenseMatchesTheNaiveProduct() throws {
        try forEachCapabilitySet(testing: "dense") { capabilities in
            for (number, (rows, inFeatures, outFeatures)) in Self.sizes.enumerated() {
                let seed = UInt64(10 * number)
                let input = seededValues(rows * inFeatures, seed: seed)
                let kernel = seededValues(inFeatures * outFeatures, seed: seed + 1)
                let bias = seededValues(outFeatures, seed: seed + 2)
                let residual = seededValues(rows * outFeatures, seed: seed + 3)
                for layout in [DenseWeightLayout.inOut, .outIn] {
                    for activation in Self.activations {
                        let expected = Self.reference(input, kernel, layout: layout, rows: rows, inFeatures: inFeatures,
                                                      outFeatures: outFeatures, bias: bias, residual: residual,
                                                      activation: activation)
                        for threads in [1, 2] {
                            let actual = try withOutput(rows * outFeatures) { output in
                                try input.withUnsafeBufferPointer { x in
                                    try kernel.withUnsafeBufferPointer { w in
                                        try bias.withUnsafeBufferPointer { b in
                                            try residual.withUnsafeBufferPointer { r in
                                                try Dense.apply(input: x, rows: rows, inFeatures: inFeatures,
                                                                outFeatures: outFeatures, kernel: w, layout: layout, bias: b,
                                                                residual: r, activation: activation, output: output,
                                                                context: KernelContext(threads: threads))
                                            }
                                        }
                                    }
                                }
                            }
                            assertClose(actual, expected, "\(rows)×\(inFeatures)×\(outFeatures) \(layout) \(activation) "
                                        + "[\(capabilities)] threads \(threads)")
                            let packed = try kernel.withUnsafeBufferPointer { w in
                                try PanelDenseWeights(kernel: w, inFeatures: inFeatures, outFeatures: outFeatures,
                                                      layout: layout)
                            }
                            let fromPanels = try withOutput(rows * outFeatures) { output in
                                try input.withUnsafeBufferPointer { x in
                                    try bias.withUnsafeBufferPointer { b in
                                        try residual.withUnsafeBufferPointer { r in
                                            try Dense.apply(input: x, rows: rows, weights: packed, bias: b, residual: r,
                                                            activation: activation, output: output,
                                                            context: KernelContext(threads: threads))
                                        }
                                    }
                                }
                            }
                            assertClose(fromPanels, expected, "panels \(rows)×\(inFeatures)×\(outFeatures) \(layout) "
                                        + "\(activation) [\(capabilities)] threads \(threads)")
                        }
                    }
                }
            }
        }
    }

    /// Panels packed for one CPU's GEMM (split into 16-column halves for AVX2, interleaved
    /// elsewhere), as a compiled file carries them to another, give the same products on every
    /// capability set.
    func testPanelsPackedForAnotherCPUGiveTheSameProduct() throws {
        for (number, (rows, inFeatures, outFeatures)) in Self.sizes.enumerated() {
            let seed = UInt64(10 * number)
            let input = seededValues(rows * inFeatures, seed: seed)
            let kernel = seededValues(inFeatures * outFeatures, seed: seed + 1)
            let bias = seededValues(outFeatures, seed: seed + 2)
            let zeros = [Float](repeating: 0, count: rows * outFeatures)
            let expected = Self.reference(input, kernel, layout: .inOut, rows: rows, inFeatures: inFeatures,
                                          outFeatures: outFeatures, bias: bias, residual: zeros, activation: .relu)
            var packings: [(CPUCapabilities, PanelDenseWeights)] = []
            try forEachCapabilitySet { capabilities in
                try kernel.withUnsafeBufferPointer { w in
                    packings.append((capabilities, try PanelDenseWeights(kernel: w, inFeatures: inFeatures,
                                                                         outFeatures: outFeatures, layout: .inOut)))
                }
            }
            try forEachCapabilitySet { capabilities in
                for (packedFor, packed) in packings {
                    let actual = try withOutput(rows * outFeatures) { output in
                        try input.withUnsafeBufferPointer { x in
                            try bias.withUnsafeBufferPointer { b in
                                try Dense.apply(input: x, rows: rows, weights: packed, bias: b, activation: .relu,
                                                output: output, context: KernelContext(threads: 2))
                            }
                        }
                    }
                    assertClose(actual, expected, "\(rows)×\(inFeatures)×\(outFeatures) packed for [\(packedFor)] "
                                + "(split halves: \(packed.splitHalves)), run on [\(capabilities)]")
                }
            }
        }
    }
}
