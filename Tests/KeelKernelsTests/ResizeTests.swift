/// Resize against ONNX Runtime fixtures: every nearest rounding and coordinate mapping,
/// bilinear, antialiased shrinking, crop-and-resize with extrapolation and bicubic (growing,
/// shrinking, corners aligned, a = −0.5 with taps outside excluded), in both layouts
/// (NHWC cases are ONNX Runtime's NCHW results transposed, also run with their channels doubled).
import KeelKernels
import XCTest

final class ResizeTests: XCTestCase {
    func testResizeMatchesONNXRuntime() throws {
        let fixtures = Fixtures.cases("resize")
        XCTAssertEqual(fixtures.count, 15)
        for fixture in fixtures {
            guard let x = fixture.input("x"), let y = fixture.output, let mode = fixture.string("coordinates") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let nchw = fixture.string("layout") == "nchw"
            let (heightAxis, widthAxis, channelAxis) = nchw ? (2, 3, 1) : (1, 2, 3)
            let scales = fixture.floats("scales")
            let roi = fixture.floats("roi") ?? [0, 0, 1, 1]
            func axis(_ position: Int, _ index: Int) -> ResizeAxis {
                let coordinates: ResizeCoordinates
                switch mode {
                case "asymmetric": coordinates = .asymmetric
                case "align_corners": coordinates = .alignCorners
                case "pytorch_half_pixel": coordinates = .pytorchHalfPixel
                case "half_pixel_symmetric": coordinates = .halfPixelSymmetric
                case "tf_crop_and_resize": coordinates = .cropAndResize(start: roi[position], end: roi[position + 2])
                default: coordinates = .halfPixel
                }
                return ResizeAxis(input: x.shape[index], output: y.shape[index], scale: scales.map { Double($0[position]) },
                                  coordinates: coordinates)
            }
            let interpolation: ResizeInterpolation
            switch (fixture.string("mode"), fixture.int("antialias"), fixture.string("nearest_mode")) {
            case ("cubic", _, _):
                interpolation = .cubic(coefficient: fixture.float("cubic_coeff_a") ?? -0.75,
                                       excludeOutside: fixture.int("exclude_outside") == 1)
            case ("linear", 1, _): interpolation = .antialiasedLinear
            case ("linear", _, _): interpolation = .linear
            case (_, _, "floor"): interpolation = .nearest(.floor)
            case (_, _, "ceil"): interpolation = .nearest(.ceil)
            case (_, _, "round_prefer_ceil"): interpolation = .nearest(.roundPreferCeil)
            default: interpolation = .nearest(.roundPreferFloor)
            }
            let geometry = ResizeGeometry(batch: x.shape[0], channels: x.shape[channelAxis], height: axis(0, heightAxis),
                                          width: axis(1, widthAxis), interpolation: interpolation,
                                          layout: nchw ? .nchw : .nhwc,
                                          extrapolationValue: fixture.float("extrapolation_value") ?? 0)
            let input = try Fixtures.floats(x)
            let expected = try Fixtures.floats(y)
            for threads in [1, 2] {
                let actual = try withOutput(expected.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try Resize.apply(input: source, output: output, geometry: geometry, context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, expected, "\(fixture.name) threads \(threads)")
            }
            // NHWC with each pixel's channels twice over (6 or 8 of them) runs the wide-channel
            // loop instead of the few-channel one; every output pixel's channels come out twice.
            guard !nchw else { continue }
            let channels = x.shape[channelAxis]
            func doubled(_ values: [Float]) -> [Float] {
                stride(from: 0, to: values.count, by: channels).flatMap { Array(values[$0..<($0 + channels)]) + values[$0..<($0 + channels)] }
            }
            var wide = geometry
            wide.channels = 2 * channels
            let source = doubled(input)
            let actual = try withOutput(2 * expected.count) { output in
                try source.withUnsafeBufferPointer { try Resize.apply(input: $0, output: output, geometry: wide) }
            }
            assertClose(actual, doubled(expected), "\(fixture.name) with \(2 * channels) channels")
        }
    }

    func testEmptyInputIsRejected() {
        let geometry = ResizeGeometry(batch: 1, channels: 1, height: ResizeAxis(input: 0, output: 2),
                                      width: ResizeAxis(input: 2, output: 2))
        var output = [Float](repeating: 0, count: 4)
        XCTAssertThrowsError(try [Float]().withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { try Resize.apply(input: source, output: $0, geometry: geometry) }
        })
    }
}
