/// BatchNorm, LayerNorm, softmax and log-softmax against ONNX Runtime fixtures.
import KeelKernels
import XCTest

final class NormalizationTests: XCTestCase {
    func testBatchNormMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("batch_norm") {
            guard let x = fixture.input("x"), let epsilon = fixture.float("epsilon") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let (gamma, beta) = (try Fixtures.input(fixture, "gamma"), try Fixtures.input(fixture, "beta"))
            let (mean, variance) = (try Fixtures.input(fixture, "mean"), try Fixtures.input(fixture, "variance"))
            let channels = x.shape[1]
            let inner = x.shape.dropFirst(2).reduce(1, *)
            var scale = [Float](repeating: 0, count: channels)
            var shift = [Float](repeating: 0, count: channels)
            try gamma.withUnsafeBufferPointer { g in
                try beta.withUnsafeBufferPointer { b in
                    try mean.withUnsafeBufferPointer { m in
                        try variance.withUnsafeBufferPointer { v in
                            try scale.withUnsafeMutableBufferPointer { s in
                                try shift.withUnsafeMutableBufferPointer { t in
                                    try BatchNorm.foldScaleShift(gamma: g, beta: b, mean: m, variance: v, epsilon: epsilon,
                                                                 channels: channels, scale: s, shift: t)
                                }
                            }
                        }
                    }
                }
            }
            let actual = try withOutput(input.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try scale.withUnsafeBufferPointer { s in
                        try shift.withUnsafeBufferPointer { t in
                            try BatchNorm.apply(input: source, output: output, scale: s, shift: t, outer: x.shape[0],
                                                channels: channels, inner: inner)
                        }
                    }
                }
            }
            assertClose(actual, try Fixtures.expected(fixture).values, fixture.name)
        }
    }

    /// Channels-last tensors of fewer than 16 channels (an image's 3) run as flat blocks with the
    /// scale and shift repeated: every pixel count (one pixel, a block boundary of 8192 / channels
    /// pixels crossed, an odd tail), one and two threads, with ReLU, in place too, against the
    /// definition in Double.
    func testBatchNormOnFewChannelsLastMatchesTheDefinition() throws {
        for (index, (channels, pixels)) in [(1, 37), (3, 1), (3, 2731), (3, 10_001), (5, 999), (7, 4097), (15, 600),
                                            (16, 513)].enumerated() {
            let input = seededValues(pixels * channels, seed: UInt64(90 + index))
            let scale = seededValues(channels, seed: UInt64(190 + index))
            let shift = seededValues(channels, seed: UInt64(290 + index))
            for activation in [UnaryOperation.identity, .relu] {
                let expected = input.indices.map { at -> Float in
                    let value = Double(input[at]) * Double(scale[at % channels]) + Double(shift[at % channels])
                    return Float(activation == .relu ? max(0, value) : value)
                }
                for threads in [1, 2] {
                    var output = [Float](repeating: .nan, count: input.count)
                    var inPlace = input
                    try scale.withUnsafeBufferPointer { s in
                        try shift.withUnsafeBufferPointer { t in
                            try input.withUnsafeBufferPointer { x in
                                try output.withUnsafeMutableBufferPointer { y in
                                    try BatchNorm.apply(input: x, output: y, scale: s, shift: t, outer: pixels,
                                                        channels: channels, inner: 1, activation: activation,
                                                        context: KernelContext(threads: threads))
                                }
                            }
                            try inPlace.withUnsafeMutableBufferPointer { y in
                                try BatchNorm.apply(input: UnsafeBufferPointer(y), output: y, scale: s, shift: t,
                                                    outer: pixels, channels: channels, inner: 1, activation: activation,
                                                    context: KernelContext(threads: threads))
                            }
                        }
                    }
                    let label = "\(pixels)×\(channels), \(activation), \(threads) threads"
                    assertClose(output, expected, label, tolerance: 1e-6)
                    XCTAssertEqual(inPlace, output, "\(label): in place")
                }
            }
        }
    }

    func testLayerNormMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("layer_norm") {
            guard let x = fixture.input("x"), let axis = fixture.int("axis"), let epsilon = fixture.float("epsilon") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let gamma = try Fixtures.input(fixture, "gamma")
            let beta = try fixture.input("beta").map { try Fixtures.floats($0) }
            let start = axis < 0 ? axis + x.shape.count : axis
            let normSize = x.shape[start...].reduce(1, *)
            let actual = try withOutput(input.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try gamma.withUnsafeBufferPointer { g in
                        if let beta {
                            try beta.withUnsafeBufferPointer { b in
                                try LayerNorm.apply(input: source, output: output, rows: input.count / normSize,
                                                    normSize: normSize, gamma: g, beta: b, epsilon: epsilon)
                            }
                        } else {
                            try LayerNorm.apply(input: source, output: output, rows: input.count / normSize,
                                                normSize: normSize, gamma: g, epsilon: epsilon)
                        }
                    }
                }
            }
            assertClose(actual, try Fixtures.expected(fixture).values, fixture.name)
        }
    }

    /// Mean and 1/sqrt(var + epsilon) per row, derived by hand: row [1,2,3,4] has mean 2.5 and
    /// variance 1.25, so with epsilon 0.25 its inverse deviation is 1/sqrt(1.5); a constant row
    /// [2,2,2,2] has variance 0 and inverse deviation 1/sqrt(0.25) = 2.
    func testLayerNormWritesRowStatistics() throws {
        let input: [Float] = [1, 2, 3, 4, 2, 2, 2, 2]
        let gamma: [Float] = [1, 1, 1, 1]
        var mean: [Float] = [0, 0]
        var inverseDeviation: [Float] = [0, 0]
        let actual = try withOutput(input.count) { output in
            try input.withUnsafeBufferPointer { source in
                try gamma.withUnsafeBufferPointer { scales in
                    try mean.withUnsafeMutableBufferPointer { meanBuffer in
                        try inverseDeviation.withUnsafeMutableBufferPointer { deviationBuffer in
                            try LayerNorm.apply(input: source, output: output, rows: 2, normSize: 4, gamma: scales,
                                                epsilon: 0.25, mean: meanBuffer, inverseDeviation: deviationBuffer)
                        }
                    }
                }
            }
        }
        let scale = 1 / Float(1.5).squareRoot()
        assertClose(actual, [-1.5 * scale, -0.5 * scale, 0.5 * scale, 1.5 * scale, 0, 0, 0, 0], "normalised rows")
        assertClose(mean, [2.5, 2], "mean")
        assertClose(inverseDeviation, [scale, 2], "inverse deviation")
    }

    func testInstanceNormMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("instance_norm") {
            guard let x = fixture.input("x"), let epsilon = fixture.float("epsilon") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let nchw = fixture.string("layout") == "nchw"
            let channels = nchw ? x.shape[1] : x.shape[3]
            let spatial = x.shape[1] * x.shape[2] * x.shape[3] / channels
            let input = try Fixtures.floats(x)
            let gamma = try Fixtures.input(fixture, "gamma")
            let beta = try Fixtures.input(fixture, "beta")
            for threads in [1, 2] {
                let actual = try withOutput(input.count) { output in
                    try withBuffers([input, gamma, beta]) { buffers in
                        try InstanceNorm.apply(input: buffers[0], output: output, batch: x.shape[0],
                                               before: nchw ? 1 : spatial, channels: channels, after: nchw ? spatial : 1,
                                               gamma: buffers[1], beta: buffers[2], epsilon: epsilon,
                                               context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, try Fixtures.expected(fixture).values, "\(fixture.name) threads \(threads)")
            }
        }
    }

    /// One plane per image, long enough to be split across threads (GroupNorm(1) exported as
    /// InstanceNormalization over [N, 1, C·H·W]), and a few planes of a ragged length: against
    /// the statistics computed here in Double.
    func testInstanceNormOfLongPlanesMatchesDoubleStatistics() throws {
        for (batch, channels, plane) in [(2, 1, 200_003), (1, 3, 1_037)] {
            let input = (0..<(batch * channels * plane)).map { Float(($0 * 7919) % 1013) / 97 - 4 }
            let (gamma, beta): ([Float], [Float]) = ((0..<channels).map { 0.5 + Float($0) }, (0..<channels).map { Float($0) - 1 })
            var expected = [Float](repeating: 0, count: input.count)
            for pair in 0..<(batch * channels) {
                let values = input[(pair * plane)..<((pair + 1) * plane)].map(Double.init)
                let mean = values.reduce(0, +) / Double(plane)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(plane)
                let channel = pair % channels
                for (index, value) in values.enumerated() {
                    expected[pair * plane + index] = Float((value - mean) / (variance + 1e-5).squareRoot() * Double(gamma[channel])
                                                           + Double(beta[channel]))
                }
            }
            for threads in [1, 2, 3] {
                let actual = try withOutput(input.count) { output in
                    try withBuffers([input, gamma, beta]) { buffers in
                        try InstanceNorm.apply(input: buffers[0], output: output, batch: batch, before: 1, channels: channels,
                                               after: plane, gamma: buffers[1], beta: buffers[2], epsilon: 1e-5,
                                               context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, expected, "\(batch)×\(channels) planes of \(plane), threads \(threads)")
            }
        }
    }

    func testLocalResponseNormMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("lrn") {
            guard let x = fixture.input("x"), let size = fixture.int("size"), let alpha = fixture.float("alpha"),
                  let beta = fixture.float("beta"), let bias = fixture.float("bias") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let nchw = fixture.string("layout") == "nchw"
            let (outer, channels, inner) = nchw ? (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
                                                : (x.shape[0] * x.shape[1] * x.shape[2], x.shape[3], 1)
            let input = try Fixtures.floats(x)
            for threads in [1, 2] {
                let actual = try withOutput(input.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try LocalResponseNorm.apply(input: source, output: output, outer: outer, channels: channels, inner: inner,
                                                    size: size, alpha: alpha, beta: beta, bias: bias,
                                                    context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, try Fixtures.expected(fixture).values, "\(fixture.name) threads \(threads)")
            }
        }
    }

    func testSoftmaxMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("softmax") + Fixtures.cases("log_softmax") {
            guard let x = fixture.input("x"), let rawAxis = fixture.int("axis") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let axis = rawAxis < 0 ? rawAxis + x.shape.count : rawAxis
            let outer = x.shape[..<axis].reduce(1, *)
            let inner = x.shape[(axis + 1)...].reduce(1, *)
            let input = try Fixtures.floats(x)
            for threads in [1, 2] {
                let actual = try withOutput(input.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try Softmax.apply(input: source, output: output, outer: outer, axis: x.shape[axis], inner: inner,
                                          logarithmic: fixture.op == "log_softmax", context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, try Fixtures.expected(fixture).values, "\(fixture.name) threads \(threads)")
            }
        }
    }
}
