/// Max, average (with and without the padding counted) and global pooling at every capability
/// set this CPU has, against a naive double-precision reference on awkward sizes: odd channels,
/// 1×1 spatial, stride 2 over an odd input, padding, dilation, both layouts.
import KeelKernels
import XCTest

final class PoolingFamilyTests: XCTestCase {
    static let geometries: [Pool2DGeometry] = {
        var geometries: [Pool2DGeometry] = []
        for layout in [ActivationLayout.nhwc, .nchw] {
            geometries += [
                Pool2DGeometry(batch: 2, channels: 7, input: Size2D(9, 11), output: Size2D(4, 5), window: Size2D(2, 2),
                               stride: Size2D(2, 2), layout: layout),
                Pool2DGeometry(batch: 1, channels: 19, input: Size2D(1, 1), output: Size2D(1, 1), window: Size2D(1, 1),
                               stride: Size2D(1, 1), layout: layout),
                Pool2DGeometry(batch: 3, channels: 5, input: Size2D(13, 7), output: Size2D(7, 4), window: Size2D(3, 3),
                               stride: Size2D(2, 2), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1), layout: layout),
                Pool2DGeometry(batch: 1, channels: 33, input: Size2D(8, 9), output: Size2D(4, 5), window: Size2D(2, 3),
                               stride: Size2D(1, 1), layout: layout, dilation: Size2D(2, 2)),
                // More channels than one block of the vector kernel (4 vectors), a ragged last one;
                // Inception's 3×3 stride-1 "same" average pool.
                Pool2DGeometry(batch: 2, channels: 70, input: Size2D(6, 5), output: Size2D(6, 5), window: Size2D(3, 3),
                               stride: Size2D(1, 1), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1), layout: layout),
                // Stride-1 rows with a long middle whose windows lie whole in the row (PoolFormer's
                // token mixer), none padded, and a window wider than its input (no middle at all).
                Pool2DGeometry(batch: 1, channels: 3, input: Size2D(5, 37), output: Size2D(5, 37), window: Size2D(3, 3),
                               stride: Size2D(1, 1), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1), layout: layout),
                Pool2DGeometry(batch: 2, channels: 2, input: Size2D(6, 20), output: Size2D(4, 17), window: Size2D(3, 4),
                               stride: Size2D(1, 1), layout: layout),
                Pool2DGeometry(batch: 1, channels: 2, input: Size2D(4, 4), output: Size2D(4, 4), window: Size2D(5, 5),
                               stride: Size2D(1, 1), padding: Padding2D(top: 2, left: 2, bottom: 2, right: 2), layout: layout),
            ]
        }
        return geometries
    }()

    enum Kind: CaseIterable { case max, average, averageCountingPadding }

    static func index(_ layout: ActivationLayout, _ image: Int, _ channel: Int, _ row: Int, _ column: Int,
                      channels: Int, size: Size2D) -> Int {
        layout == .nhwc ? ((image * size.height + row) * size.width + column) * channels + channel
            : ((image * channels + channel) * size.height + row) * size.width + column
    }

    /// Straight from the definition: padding never wins a max and counts in an average only when asked.
    static func reference(_ kind: Kind, _ input: [Float], _ g: Pool2DGeometry) -> [Float] {
        var output = [Float](repeating: 0, count: g.batch * g.channels * g.output.height * g.output.width)
        for image in 0..<g.batch {
            for channel in 0..<g.channels {
                for row in 0..<g.output.height {
                    for column in 0..<g.output.width {
                        var (maximum, sum, valid) = (-Double.infinity, 0.0, 0)
                        for ky in 0..<g.window.height {
                            for kx in 0..<g.window.width {
                                let y = row * g.stride.height - g.padding.top + ky * g.dilation.height
                                let x = column * g.stride.width - g.padding.left + kx * g.dilation.width
                                guard y >= 0, y < g.input.height, x >= 0, x < g.input.width else { continue }
                                let value = Double(input[index(g.layout, image, channel, y, x, channels: g.channels, size: g.input)])
                                maximum = max(maximum, value)
                                sum += value
                                valid += 1
                            }
                        }
                        let at = index(g.layout, image, channel, row, column, channels: g.channels, size: g.output)
                        switch kind {
                        case .max: output[at] = Float(maximum)
                        case .average: output[at] = Float(sum / Double(valid))
                        case .averageCountingPadding: output[at] = Float(sum / Double(g.window.height * g.window.width))
                        }
                    }
                }
            }
        }
        return output
    }

    func testWindowedPoolingMatchesTheNaiveReference() throws {
        try forEachCapabilitySet(testing: "pooling") { capabilities in
            for (number, geometry) in Self.geometries.enumerated() {
                let input = seededValues(geometry.batch * geometry.channels * geometry.input.height * geometry.input.width,
                                         seed: UInt64(number))
                for kind in Kind.allCases {
                    for threads in [1, 2] {
                        let count = geometry.batch * geometry.channels * geometry.output.height * geometry.output.width
                        let actual = try withOutput(count) { output in
                            try input.withUnsafeBufferPointer { source in
                                let context = KernelContext(threads: threads)
                                switch kind {
                                case .max: try Pooling.maxPool(input: source, output: output, geometry: geometry, context: context)
                                case .average, .averageCountingPadding:
                                    try Pooling.averagePool(input: source, output: output, geometry: geometry,
                                                            countIncludePad: kind == .averageCountingPadding, context: context)
                                }
                            }
                        }
                        assertClose(actual, Self.reference(kind, input, geometry),
                                    "case \(number) \(geometry.layout) \(kind) [\(capabilities)] threads \(threads)", tolerance: 1e-5)
                    }
                }
            }
        }
    }

    /// A NaN reaches every max and average window that holds it, and no other, at every level.
    func testANaNReachesExactlyTheWindowsThatHoldIt() throws {
        let geometry = Pool2DGeometry(batch: 1, channels: 21, input: Size2D(5, 5), output: Size2D(5, 5), window: Size2D(3, 3),
                                      stride: Size2D(1, 1), padding: Padding2D(top: 1, left: 1, bottom: 1, right: 1))
        var input = seededValues(5 * 5 * 21, seed: 7)
        let (nanRow, nanColumn, nanChannel) = (0, 3, 18)
        input[(nanRow * 5 + nanColumn) * 21 + nanChannel] = .nan
        try forEachCapabilitySet { capabilities in
            for average in [false, true] {
                let actual = try withOutput(5 * 5 * 21) { output in
                    try input.withUnsafeBufferPointer { source in
                        if average { try Pooling.averagePool(input: source, output: output, geometry: geometry) }
                        else { try Pooling.maxPool(input: source, output: output, geometry: geometry) }
                    }
                }
                for row in 0..<5 {
                    for column in 0..<5 {
                        for channel in 0..<21 {
                            let holds = channel == nanChannel && abs(row - nanRow) <= 1 && abs(column - nanColumn) <= 1
                            XCTAssertEqual(actual[(row * 5 + column) * 21 + channel].isNaN, holds,
                                           "\(average ? "average" : "max") (\(row), \(column), \(channel)) [\(capabilities)]")
                        }
                    }
                }
            }
        }
    }

    /// At batch 1 an NHWC global pool splits each pixel's channels between threads (slices of whole
    /// vectors, a ragged last one), and a map above 1 MB its pixels (two bands, an odd count):
    /// against the reference, and the same bits at 1, 2 and 3 threads.
    func testGlobalPoolingSplitOverChannelsMatchesAtEveryThreadCount() throws {
        try forEachCapabilitySet(testing: "global pooling over channel slices") { capabilities in
            for (channels, size) in [(37, Size2D(29, 31)), (70, Size2D(20, 20)), (16, Size2D(64, 64)), (200, Size2D(7, 7)),
                                     (37, Size2D(85, 87))] {
                let spatial = size.height * size.width
                let input = seededValues(channels * spatial, seed: UInt64(channels + 3))
                let window = Pool2DGeometry(batch: 1, channels: channels, input: size, output: Size2D(1, 1),
                                            window: size, stride: size, layout: .nhwc)
                for average in [true, false] {
                    let outputs = try [1, 2, 3].map { threads in
                        try withOutput(channels) { output in
                            try input.withUnsafeBufferPointer { source in
                                let context = KernelContext(threads: threads)
                                if average {
                                    try Pooling.globalAveragePool(input: source, output: output, batch: 1, channels: channels,
                                                                  spatial: spatial, layout: .nhwc, context: context)
                                } else {
                                    try Pooling.globalMaxPool(input: source, output: output, batch: 1, channels: channels,
                                                              spatial: spatial, layout: .nhwc, context: context)
                                }
                            }
                        }
                    }
                    let label = "global \(average ? "average" : "max") 1×\(channels)×\(size) [\(capabilities)]"
                    assertClose(outputs[0], Self.reference(average ? .average : .max, input, window), label, tolerance: 1e-5)
                    for threads in 1..<outputs.count {
                        XCTAssertEqual(outputs[threads].map(\.bitPattern), outputs[0].map(\.bitPattern),
                                       "\(label): \(threads + 1) threads against 1")
                    }
                }
            }
        }
    }

    func testGlobalPoolingMatchesTheNaiveReference() throws {
        try forEachCapabilitySet(testing: "global pooling") { capabilities in
            for (batch, channels, size) in [(2, 7, Size2D(5, 3)), (1, 33, Size2D(1, 1)), (3, 1, Size2D(7, 7)),
                                            (2, 70, Size2D(9, 9)), (3, 19, Size2D(121, 117))] {
                for layout in [ActivationLayout.nhwc, .nchw] {
                    let spatial = size.height * size.width
                    let input = seededValues(batch * channels * spatial, seed: UInt64(channels))
                    let window = Pool2DGeometry(batch: batch, channels: channels, input: size, output: Size2D(1, 1),
                                                window: size, stride: size, layout: layout)
                    for average in [true, false] {
                        let actual = try withOutput(batch * channels) { output in
                            try input.withUnsafeBufferPointer { source in
                                if average {
                                    try Pooling.globalAveragePool(input: source, output: output, batch: batch, channels: channels,
                                                                  spatial: spatial, layout: layout)
                                } else {
                                    try Pooling.globalMaxPool(input: source, output: output, batch: batch, channels: channels,
                                                              spatial: spatial, layout: layout)
                                }
                            }
                        }
                        // [N, C] in both layouts: the 1×1 window's output index is the same.
                        assertClose(actual, Self.reference(average ? .average : .max, input, window),
                                    "global \(average ? "average" : "max") \(batch)×\(channels)×\(size) \(layout) [\(capabilities)]",
                                    tolerance: 1e-5)
                    }
                }
            }
        }
    }
}
