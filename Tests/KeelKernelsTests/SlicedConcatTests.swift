import XCTest
@testable import KeelKernels

/// Copies into slices of a wider buffer and batch_norm reading such a slice, as the plan uses
/// them for concatenations that share one buffer; against loops written out here, on odd sizes,
/// and the same at every thread count.
final class SlicedConcatTests: XCTestCase {
    private func values(_ count: Int, seed: Float) -> [Float] {
        (0..<count).map { Float(($0 * 37 + 11) % 97) * 0.25 - 9 + seed }
    }

    /// A buffer the caller deallocates, for kernels that take several inputs at once.
    private func buffer(_ values: [Float]) -> UnsafeBufferPointer<Float> {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
        _ = buffer.initialize(from: values)
        return UnsafeBufferPointer(buffer)
    }

    func testCopyIntoSlicesWritesOnlyItsSlices() throws {
        // Two inputs into axis positions 2..<5 and 7..<8 of an 11-wide axis, the output starting
        // at position 1 of its buffer's rows (a slice itself), so the last row ends short.
        let (outer, inner, rowExtent, base) = (3, 5, 11, 1)
        let starts = [1, 6], extents = [3, 1]
        let inputs = zip(extents, [1, 2]).map { values(outer * $0 * inner, seed: Float($1)) }
        let sources = inputs.map(buffer)
        defer { sources.forEach { $0.deallocate() } }
        let sentinel: Float = -1000
        var expected = [Float](repeating: sentinel, count: outer * rowExtent * inner)
        for (input, (start, extent)) in zip(inputs, zip(starts, extents)) {
            for row in 0..<outer {
                for position in 0..<extent {
                    for index in 0..<inner {
                        expected[(row * rowExtent + base + start + position) * inner + index] =
                            input[(row * extent + position) * inner + index]
                    }
                }
            }
        }
        for threads in [1, 2, 3] {
            var actual = [Float](repeating: sentinel, count: expected.count)
            try actual.withUnsafeMutableBufferPointer { buffer in
                let slice = UnsafeMutableBufferPointer(rebasing: buffer[(base * inner)...])
                try DataMovement.copyIntoSlices(inputs: sources, axisStarts: starts, axisExtents: extents, outer: outer,
                                                inner: inner, outputAxisExtent: rowExtent, output: slice,
                                                context: KernelContext(threads: threads))
            }
            XCTAssertEqual(actual, expected, "\(threads) threads")
        }
    }

    func testCopyIntoSlicesRefusesASliceOutsideTheAxis() {
        let input: [Float] = [1, 2]
        var output = [Float](repeating: 0, count: 4)
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { buffer in
                try DataMovement.copyIntoSlices(inputs: [source], axisStarts: [3], axisExtents: [2], outer: 1, inner: 1,
                                                outputAxisExtent: 4, output: buffer)
            }
        })
    }

    /// NHWC (channels innermost, rows are pixels) and NCHW (rows are images, planes inside).
    func testBatchNormReadsARowStridedSlice() throws {
        for (outer, channels, inner) in [(7, 5, 1), (3, 3, 7), (1, 9, 1), (2, 1, 13)] {
            let rowStride = (channels + 4) * inner
            let input = values((outer - 1) * rowStride + channels * inner + 3, seed: 0.5)
            let scale = (0..<channels).map { Float($0) * 0.75 - 1.5 }
            let shift = (0..<channels).map { Float($0) * -0.5 + 0.25 }
            let (scales, shifts) = (buffer(scale), buffer(shift))
            defer { scales.deallocate(); shifts.deallocate() }
            var expected = [Float](repeating: 0, count: outer * channels * inner)
            for row in 0..<outer {
                for channel in 0..<channels {
                    for index in 0..<inner {
                        let value = input[row * rowStride + channel * inner + index] * scale[channel] + shift[channel]
                        expected[(row * channels + channel) * inner + index] = max(0, value)
                    }
                }
            }
            for threads in [1, 2] {
                var actual = [Float](repeating: .nan, count: expected.count)
                try actual.withUnsafeMutableBufferPointer { output in
                    try input.withUnsafeBufferPointer { source in
                        try BatchNorm.apply(input: source, output: output, scale: scales,
                                            shift: shifts, outer: outer, channels: channels,
                                            inner: inner, activation: .relu, inputRowStride: rowStride,
                                            context: KernelContext(threads: threads))
                    }
                }
                XCTAssertEqual(actual, expected, "[\(outer), \(channels), \(inner)] on \(threads) threads")
            }
        }
    }
}
