/// The filter transform U = G·g·Gᵀ that prepares 3×3 filters for Winograd F(4×4, 3×3) and
/// F(2×2, 3×3), at every SIMD level, against the product computed here with plain double
/// matrices; and the packing of
/// filters for im2col, split over threads, against indices computed from the layouts' definitions.
import KeelKernels
import XCTest

final class WinogradFilterTransformTests: XCTestCase {
    /// The filter matrices (Lavin & Gray): F(4×4, 3×3)'s 6×3 and F(2×2, 3×3)'s 4×3.
    private func g(_ tile: WinogradTile) -> [[Double]] {
        switch tile {
        case .large: [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                      [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
        case .small: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        }
    }

    /// The transform points of one 3×3 filter, row-major over the side×side result.
    private func expectedPoints(_ taps: [Double], _ tile: WinogradTile) -> [Double] {
        let (g, side) = (g(tile), tile.inputSize)
        var half = [[Double]](repeating: [Double](repeating: 0, count: 3), count: side)
        for row in 0..<side { for column in 0..<3 { for k in 0..<3 { half[row][column] += g[row][k] * taps[k * 3 + column] } } }
        var points = [Double](repeating: 0, count: side * side)
        for row in 0..<side {
            for column in 0..<side { for k in 0..<3 { points[row * side + column] += half[row][k] * g[column][k] } }
        }
        return points
    }

    /// Checks every point of every (input, output) filter and that panel padding stays zero.
    private func check(_ weights: WinogradWeights, taps: (Int, Int) -> [Double], inputs: Int, outputs: Int,
                       _ label: String) {
        let panelWidth = 32
        let panels = (outputs + panelWidth - 1) / panelWidth
        let pointStride = panels * panelWidth * inputs
        let points = weights.tile.points
        // Panels interleaved ([inputs][32]) or split into two [inputs][16] halves.
        func offset(_ input: Int, _ output: Int) -> Int {
            let lane = output % panelWidth, panel = (output / panelWidth) * inputs * panelWidth
            return weights.splitHalves ? panel + (lane / 16) * inputs * 16 + input * 16 + lane % 16
                                       : panel + input * panelWidth + lane
        }
        weights.withUnsafeValues { values in
            XCTAssertEqual(values.count, points * pointStride, label)
            var worst = 0.0
            for input in 0..<inputs {
                for output in 0..<outputs {
                    let expected = expectedPoints(taps(input, output), weights.tile)
                    for point in 0..<points {
                        worst = max(worst, abs(Double(values[point * pointStride + offset(input, output)]) - expected[point]))
                    }
                }
                for point in 0..<points {
                    for column in outputs..<(panels * panelWidth) {
                        XCTAssertEqual(values[point * pointStride + offset(input, column)], 0,
                                       "\(label): padding column \(column)")
                    }
                }
            }
            XCTAssertLessThanOrEqual(worst, 1e-6, label)
        }
    }

    /// Channel counts off every vector width (8, 16) and panel width (32), from each source layout.
    func testTransformMatchesMatrixProductAtEveryLevel() throws {
        for (inputs, outputs) in [(3, 5), (17, 37), (16, 64), (9, 24)] {
            let oihw = seededValues(outputs * inputs * 9, seed: UInt64(inputs * 100 + outputs))
            let taps = { (input: Int, output: Int) in (0..<9).map { Double(oihw[(output * inputs + input) * 9 + $0]) } }
            var hwio = [Float](repeating: 0, count: oihw.count)
            for input in 0..<inputs {
                for output in 0..<outputs {
                    for tap in 0..<9 { hwio[(tap * inputs + input) * outputs + output] = oihw[(output * inputs + input) * 9 + tap] }
                }
            }
            try forEachCapabilitySet { level in
                for (threads, tile) in [(1, WinogradTile.large), (2, .large), (1, .small), (2, .small)] {
                    let context = KernelContext(threads: threads)
                    let label = "\(inputs)x\(outputs) \(tile) \(level) threads \(threads)"
                    let fromONNX = try oihw.withUnsafeBufferPointer {
                        try WinogradWeights(oihw: $0, inputChannels: inputs, outputChannels: outputs, tile: tile,
                                            context: context)
                    }
                    check(fromONNX, taps: taps, inputs: inputs, outputs: outputs, "oihw " + label)
                    let fromKeras = try hwio.withUnsafeBufferPointer {
                        try WinogradWeights(hwio: $0, inputChannels: inputs, outputChannels: outputs, tile: tile,
                                            context: context)
                    }
                    check(fromKeras, taps: taps, inputs: inputs, outputs: outputs, "hwio " + label)
                    let packed = try oihw.withUnsafeBufferPointer {
                        try PackedConv2DWeights(oihw: $0, kernel: Size2D(3, 3), inputChannelsPerGroup: inputs,
                                                outputChannels: outputs, context: context)
                    }
                    check(try WinogradWeights(packed, tile: tile, context: context), taps: taps, inputs: inputs,
                          outputs: outputs, "packed " + label)
                }
            }
        }
    }

    /// Packed values are [group][(row, column, input)][output within the group], whatever the
    /// source layout and however many threads pack them.
    func testPackingMatchesLayoutDefinitionsOnThreads() throws {
        let (height, width, perGroup, outputs, groups) = (3, 2, 40, 140, 2)
        let count = height * width * perGroup * outputs
        let oihw = seededValues(count, seed: 77)
        var hwio = [Float](repeating: 0, count: count)
        var expected = [Float](repeating: 0, count: count)
        let outputsPerGroup = outputs / groups
        let reduction = height * width * perGroup
        for output in 0..<outputs {
            for input in 0..<perGroup {
                for row in 0..<height {
                    for column in 0..<width {
                        let value = oihw[((output * perGroup + input) * height + row) * width + column]
                        hwio[((row * width + column) * perGroup + input) * outputs + output] = value
                        let k = (row * width + column) * perGroup + input
                        expected[((output / outputsPerGroup) * reduction + k) * outputsPerGroup + output % outputsPerGroup] = value
                    }
                }
            }
        }
        for threads in [1, 2] {
            let context = KernelContext(threads: threads)
            let fromONNX = try oihw.withUnsafeBufferPointer {
                try PackedConv2DWeights(oihw: $0, kernel: Size2D(height, width), inputChannelsPerGroup: perGroup,
                                        outputChannels: outputs, groups: groups, context: context)
            }
            let fromKeras = try hwio.withUnsafeBufferPointer {
                try PackedConv2DWeights(hwio: $0, kernel: Size2D(height, width), inputChannelsPerGroup: perGroup,
                                        outputChannels: outputs, groups: groups, context: context)
            }
            XCTAssertEqual(fromONNX.withUnsafeValues { Array($0) }, expected, "oihw, \(threads) threads")
            XCTAssertEqual(fromKeras.withUnsafeValues { Array($0) }, expected, "hwio, \(threads) threads")
        }
    }
}
