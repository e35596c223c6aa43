/// The bf16 kernels' split into units of rows × column blocks (`BF16Convolution.unitGrid`, run by
/// CSIMDKernels `keel_bf16_run_units`, where threads take units from each other's shares): every
/// thread count gives a different grid, and every grid the same bits, within the fp32 summation
/// bound of a double-precision reference on bf16-rounded values.
@testable import KeelKernels
import XCTest

extension BF16ConvolutionTests {
    /// Layers big enough to run on several threads: the direct form, pooled and not, deep enough
    /// that its columns split too, and the im2col form (stride 2).
    static let splitCases: [(testCase: Case, pooled: Bool)] = [
        (Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(12, 20), inputChannels: 64, outputChannels: 100,
                                       kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
              activation: .relu, bias: true, residual: true), false),
        (Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(11, 20), inputChannels: 64, outputChannels: 100,
                                       kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
              activation: .relu, bias: true), true),
        (Case(geometry: Conv2DGeometry(batch: 1, input: Size2D(6, 16), inputChannels: 512, outputChannels: 70,
                                       kernel: Size2D(3, 3), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
              activation: .relu, bias: true), false),
        (Case(geometry: Conv2DGeometry(batch: 2, input: Size2D(24, 23), inputChannels: 64, outputChannels: 80,
                                       kernel: Size2D(3, 3), stride: Size2D(2, 2),
                                       padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1)),
              activation: .identity, bias: true, residual: true), false),
    ]

    func testEveryThreadCountsGridGivesTheSameBits() throws {
        guard BF16Convolution.isAvailable else { throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16") }
        for (index, (testCase, pooled)) in Self.splitCases.enumerated() {
            let geometry = testCase.geometry, depth = geometry.reductionLength, columns = geometry.outputChannels
            let pooled = pooled && BF16Convolution.poolsInKernel(geometry)
            let input = seededValues(geometry.inputElementCount, seed: UInt64(13 + index))
            let filter = seededValues(depth * columns, seed: UInt64(29 + index))
            let bias = seededValues(columns, seed: UInt64(7 + index))
            let residual = seededValues(testCase.residual ? geometry.outputElementCount : 0, seed: UInt64(43 + index))
            let weights = try filter.withUnsafeBufferPointer {
                try BF16Weights($0, depth: depth, columns: columns, depthStride: columns, columnStride: 1)
            }
            let (full, magnitude) = Self.reference(testCase, input: input.map(bf16), filter: filter.map(bf16), bias: bias,
                                              residual: testCase.residual ? residual : nil)
            let out = geometry.output
            // Pooled: the maximum of each 2×2 window of the reference (floor mode).
            var expected = full, bounds = magnitude.map { Double(depth) * 1.2e-7 * $0 + 1e-7 }
            if pooled {
                let size = Size2D(out.height / 2, out.width / 2)
                expected = []
                bounds = []
                for image in 0..<geometry.batch {
                    for y in 0..<size.height {
                        for x in 0..<size.width {
                            for o in 0..<columns {
                                let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map {
                                    ((image * out.height + 2 * y + $0.0) * out.width + 2 * x + $0.1) * columns + o
                                }
                                expected.append(window.map { full[$0] }.max() ?? 0)
                                bounds.append(Double(depth) * 1.2e-7 * (window.map { magnitude[$0] }.max() ?? 0) + 1e-7)
                            }
                        }
                    }
                }
            }
            var first: [Float]?
            for threads in [1, 2, 3, 5] {
                var scratch = [Float](repeating: .nan, count: BF16Convolution.scratchSize(for: geometry, threads: threads))
                let actual = try withOutput(expected.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try scratch.withUnsafeMutableBufferPointer { work in
                            try bias.withUnsafeBufferPointer { biasValues in
                                try residual.withUnsafeBufferPointer { shortcut in
                                    try BF16Convolution.apply(input: source, weights: weights, bias: biasValues,
                                                              residual: testCase.residual ? shortcut : nil,
                                                              activation: testCase.activation, output: output,
                                                              geometry: geometry, scratch: work, maxPooled: pooled,
                                                              context: KernelContext(threads: threads))
                                }
                            }
                        }
                    }
                }
                for position in 0..<expected.count {
                    XCTAssertEqual(Double(actual[position]), expected[position], accuracy: bounds[position],
                                   "case \(index) threads \(threads) at \(position)")
                }
                if let first {
                    XCTAssertEqual(actual.map(\.bitPattern), first.map(\.bitPattern), "case \(index) threads \(threads)")
                } else {
                    first = actual
                }
            }
        }
    }

    /// One thread runs one unit; more take `unitsPerThread` each where the layer has them, a deep
    /// layer with few pixels splitting its columns (its filter is the larger stream), a shallow one
    /// with many rows only its rows (its input is).
    func testUnitGridsSplitTheLargerStreamLeast() {
        let same = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        let deep = Conv2DGeometry(batch: 1, input: Size2D(14, 14), inputChannels: 512, outputChannels: 512,
                                  kernel: Size2D(3, 3), padding: same)
        let shallow = Conv2DGeometry(batch: 1, input: Size2D(224, 224), inputChannels: 64, outputChannels: 64,
                                     kernel: Size2D(3, 3), padding: same)
        let tiny = Conv2DGeometry(batch: 1, input: Size2D(2, 1), inputChannels: 32, outputChannels: 20,
                                  kernel: Size2D(1, 1))
        func grid(_ geometry: Conv2DGeometry, _ steps: Int, _ threads: Int) -> [Int] {
            let grid = BF16Convolution.unitGrid(geometry, steps: steps, threads: threads, direct: true)
            return [grid.rows, grid.columns]
        }
        XCTAssertEqual(grid(deep, 14, 1), [1, 1])
        // 14×14×512: 4.7 MB of filter against 0.2 MB of input.
        let deepGrid = grid(deep, 14, 2)
        XCTAssertGreaterThan(deepGrid[1], 1)
        XCTAssertGreaterThanOrEqual(deepGrid[0] * deepGrid[1], 8)
        XCTAssertEqual(grid(shallow, 224, 2), [8, 1])
        // Fewer units than wanted: all of them.
        XCTAssertEqual(grid(tiny, 2, 4), [2, 1])
    }
}
