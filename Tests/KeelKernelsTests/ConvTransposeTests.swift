/// Transposed convolution against ONNX Runtime fixtures over one, two and three spatial axes,
/// with strides, dilations, asymmetric pads, output padding, groups and bias.
import KeelKernels
import XCTest

final class ConvTransposeTests: XCTestCase {
    func testConvTransposeMatchesONNXRuntime() throws {
        let fixtures = Fixtures.cases("conv_transpose")
        XCTAssertEqual(fixtures.count, 3)
        for fixture in fixtures {
            guard let x = fixture.input("x"), let w = fixture.input("w"), let y = fixture.output,
                  let strides = fixture.ints("strides"), let dilations = fixture.ints("dilations"),
                  let pads = fixture.ints("pads"), let groups = fixture.int("groups") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let rank = x.shape.count - 2
            let geometry = ConvTransposeGeometry(batch: x.shape[0], inputChannels: x.shape[1], outputChannels: y.shape[1],
                                                 groups: groups, input: Array(x.shape[2...]), output: Array(y.shape[2...]),
                                                 kernel: Array(w.shape[2...]), strides: strides, dilations: dilations,
                                                 padBegin: Array(pads[..<rank]))
            let arrays = try [Fixtures.floats(x), Fixtures.floats(w)] + (fixture.input("b").map { [try Fixtures.floats($0)] } ?? [])
            var scratch = [Float](repeating: .nan, count: ConvTranspose.scratchSize(for: geometry))
            for threads in [1, 2] {
                let actual = try withOutput(y.count) { output in
                    try withBuffers(arrays) { buffers in
                        try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                            try ConvTranspose.apply(input: buffers[0], weights: buffers[1], bias: buffers.count > 2 ? buffers[2] : nil,
                                                    output: output, geometry: geometry, scratch: scratchBuffer,
                                                    context: KernelContext(threads: threads))
                        }
                    }
                }
                assertClose(actual, try Fixtures.floats(y), "\(fixture.name) threads \(threads)")
            }
        }
    }

    func testGroupsMustDivideTheChannels() {
        let geometry = ConvTransposeGeometry(batch: 1, inputChannels: 3, outputChannels: 4, groups: 2, input: [2, 2],
                                             output: [3, 3], kernel: [2, 2], strides: [1, 1], dilations: [1, 1], padBegin: [0, 0])
        var output = [Float](repeating: 0, count: 36)
        var scratch = [Float](repeating: 0, count: 64)
        XCTAssertThrowsError(try [Float](repeating: 1, count: 12).withUnsafeBufferPointer { input in
            try [Float](repeating: 1, count: 24).withUnsafeBufferPointer { weights in
                try output.withUnsafeMutableBufferPointer { target in
                    try scratch.withUnsafeMutableBufferPointer {
                        try ConvTranspose.apply(input: input, weights: weights, output: target, geometry: geometry, scratch: $0)
                    }
                }
            }
        })
    }
}
