/// Max/average/global pooling against ONNX Runtime fixtures, including ceil_mode and both
/// count_include_pad settings; the output size is computed here with `slidingWindowOutputSize`
/// and must agree with ONNX Runtime's.
import KeelKernels
import XCTest

final class PoolingTests: XCTestCase {
    func testPoolingMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("pool2d") {
            guard let x = fixture.input("x"), let window = fixture.ints("window"), let strides = fixture.ints("strides"),
                  let pads = fixture.ints("pads") else { return XCTFail("\(fixture.name): incomplete case") }
            let layout: ActivationLayout = fixture.string("layout") == "nchw" ? .nchw : .nhwc
            let (batch, height, width, channels) = layout == .nhwc
                ? (x.shape[0], x.shape[1], x.shape[2], x.shape[3]) : (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
            let padding = try Padding2D(pads)
            let ceilMode = fixture.int("ceil_mode") == 1
            let dilations = fixture.ints("dilations") ?? [1, 1]
            let output = Size2D(
                slidingWindowOutputSize(input: height, kernel: window[0], stride: strides[0], dilation: dilations[0],
                                        padBegin: padding.top, padEnd: padding.bottom, ceilMode: ceilMode),
                slidingWindowOutputSize(input: width, kernel: window[1], stride: strides[1], dilation: dilations[1],
                                        padBegin: padding.left, padEnd: padding.right, ceilMode: ceilMode))
            let expected = try Fixtures.expected(fixture)
            let expectedSize = layout == .nhwc ? Size2D(expected.shape[1], expected.shape[2])
                                               : Size2D(expected.shape[2], expected.shape[3])
            XCTAssertEqual(output, expectedSize, "\(fixture.name): output size")
            let geometry = Pool2DGeometry(batch: batch, channels: channels, input: Size2D(height, width), output: output,
                                          window: Size2D(window[0], window[1]), stride: Size2D(strides[0], strides[1]),
                                          padding: padding, layout: layout, dilation: Size2D(dilations[0], dilations[1]))
            let input = try Fixtures.floats(x)
            for threads in [1, 2] {
                let context = KernelContext(threads: threads)
                let actual = try withOutput(geometry.outputElementCount) { destination in
                    try input.withUnsafeBufferPointer { source in
                        if fixture.string("kind") == "max" {
                            try Pooling.maxPool(input: source, output: destination, geometry: geometry, context: context)
                        } else {
                            try Pooling.averagePool(input: source, output: destination, geometry: geometry,
                                                    countIncludePad: fixture.int("count_include_pad") == 1,
                                                    context: context)
                        }
                    }
                }
                assertClose(actual, expected.values, "\(fixture.name) threads \(threads)")
            }
        }
    }

    func testGlobalPoolingMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("global_pool2d") {
            guard let x = fixture.input("x") else { return XCTFail("\(fixture.name): no x") }
            let layout: ActivationLayout = fixture.string("layout") == "nchw" ? .nchw : .nhwc
            let channels = layout == .nhwc ? x.shape[3] : x.shape[1]
            let spatial = layout == .nhwc ? x.shape[1] * x.shape[2] : x.shape[2] * x.shape[3]
            let input = try Fixtures.floats(x)
            let expected = try Fixtures.expected(fixture)
            let actual = try withOutput(x.shape[0] * channels) { destination in
                try input.withUnsafeBufferPointer { source in
                    if fixture.string("kind") == "max" {
                        try Pooling.globalMaxPool(input: source, output: destination, batch: x.shape[0], channels: channels,
                                                  spatial: spatial, layout: layout)
                    } else {
                        try Pooling.globalAveragePool(input: source, output: destination, batch: x.shape[0],
                                                      channels: channels, spatial: spatial, layout: layout)
                    }
                }
            }
            assertClose(actual, expected.values, fixture.name)
        }
    }

    func testWindowsStartingPastTheInputAreRejected() {
        let geometry = Pool2DGeometry(batch: 1, channels: 1, input: Size2D(4, 4), output: Size2D(4, 4),
                                      window: Size2D(2, 2), stride: Size2D(2, 2))
        let input = [Float](repeating: 0, count: 16)
        var output = [Float](repeating: 0, count: 16)
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { try Pooling.maxPool(input: source, output: $0, geometry: geometry) }
        })
    }

    /// Dilated windows over x = 1...16 as a 4×4 image, values derived by hand. A 2×2 window with
    /// dilation 2 reads x[r][c], x[r][c+2], x[r+2][c], x[r+2][c+2]. With one pixel of padding and
    /// stride 2, the corner window keeps one of its four taps (x[1][1] = 6), so counting padded
    /// taps divides by 4 instead of 1.
    func testDilatedWindowsSkipBetweenTaps() throws {
        let input = (1...16).map(Float.init)
        func run(_ padding: Padding2D, stride: Int, output: Int, average: Bool, countIncludePad: Bool = false) throws -> [Float] {
            let geometry = Pool2DGeometry(batch: 1, channels: 1, input: Size2D(4, 4), output: Size2D(output, output),
                                          window: Size2D(2, 2), stride: Size2D(stride, stride), padding: padding,
                                          layout: .nchw, dilation: Size2D(2, 2))
            return try withOutput(output * output) { target in
                try input.withUnsafeBufferPointer { source in
                    if average {
                        try Pooling.averagePool(input: source, output: target, geometry: geometry, countIncludePad: countIncludePad)
                    } else {
                        try Pooling.maxPool(input: source, output: target, geometry: geometry)
                    }
                }
            }
        }
        assertClose(try run(.zero, stride: 1, output: 2, average: false), [11, 12, 15, 16], "max")
        assertClose(try run(.zero, stride: 1, output: 2, average: true), [6, 7, 10, 11], "average")
        let padded = Padding2D(top: 1, left: 1, bottom: 1, right: 1)
        assertClose(try run(padded, stride: 2, output: 2, average: true), [6, 7, 10, 11], "padded average, valid taps")
        assertClose(try run(padded, stride: 2, output: 2, average: true, countIncludePad: true), [1.5, 3.5, 5, 11],
                    "padded average, padded taps")
        assertClose(try run(padded, stride: 2, output: 2, average: false), [6, 8, 14, 16], "padded max")
    }

    /// A 1×1 stride-2 max pool over bf16 values (two per float slot) picks each output pixel's
    /// channels from its input pixel, bit for bit, on an odd map and an odd channel count per pair
    /// of pixels; other windows are refused.
    func testSubsampleMovesBF16ValuesBitForBit() throws {
        let (batch, height, width, channels) = (2, 5, 7, 3)
        let geometry = Pool2DGeometry(batch: batch, channels: channels, input: Size2D(height, width),
                                      output: Size2D(3, 4), window: .one, stride: Size2D(2, 2))
        let values = (0..<(batch * height * width * channels)).map { UInt16(truncatingIfNeeded: 0x3F00 + $0 * 37) }
        var input = [Float](repeating: 0, count: (values.count + 1) / 2)
        input.withUnsafeMutableBytes { $0.copyBytes(from: values.withUnsafeBytes { Array($0) }) }
        var output = [Float](repeating: .nan, count: (batch * 3 * 4 * channels + 1) / 2)
        try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { target in
                try Pooling.subsampleBF16(input: source, output: target, geometry: geometry)
            }
        }
        let picked = output.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self).prefix(batch * 3 * 4 * channels)) }
        var expected: [UInt16] = []
        for image in 0..<batch {
            for row in 0..<3 {
                for column in 0..<4 {
                    let pixel = (image * height + 2 * row) * width + 2 * column
                    expected += values[pixel * channels..<(pixel + 1) * channels]
                }
            }
        }
        XCTAssertEqual(picked, expected)
        var window = geometry
        window.window = Size2D(2, 2)
        XCTAssertFalse(Pooling.isSubsample(window))
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { target in
                try Pooling.subsampleBF16(input: source, output: target, geometry: window)
            }
        })
    }
}
