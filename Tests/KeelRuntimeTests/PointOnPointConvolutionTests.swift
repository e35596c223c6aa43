import KeelFormat
import KeelIR
import KeelKernels
import KeelPasses
import XCTest
@testable import KeelRuntime

/// A 1×1 convolution over a 1×1 map (squeeze-excitation's layers in a PyTorch export) reads and
/// writes the same floats in NCHW and NHWC, so it runs as NHWC, a [batch × inputs]·[inputs ×
/// outputs] product: as NCHW its filter was the left operand of a one-column product.
final class PointOnPointConvolutionTests: XCTestCase {
    private static let (channels, reduced, size) = (40, 12, 5)

    private func values(_ count: Int, _ seed: Int) -> [Double] {
        (0..<count).map { Double(($0 * 37 + seed * 11) % 29) * 0.05 - 0.7 }
    }

    private func listed(_ values: [Double]) -> String { values.map { String($0) }.joined(separator: ", ") }

    private var text: String {
        let (channels, reduced, size) = (Self.channels, Self.reduced, Self.size)
        return """
            graph squeeze_excitation
            input %x: f32[N,\(channels),\(size),\(size)]
            const @reduce/kernel: f32[\(reduced),\(channels),1,1] kernel frozen = [\(listed(values(reduced * channels, 1)))]
            const @reduce/bias: f32[\(reduced)] bias frozen = [\(listed(values(reduced, 2)))]
            const @expand/kernel: f32[\(channels),\(reduced),1,1] kernel frozen = [\(listed(values(channels * reduced, 3)))]
            const @expand/bias: f32[\(channels)] bias frozen = [\(listed(values(channels, 4)))]
            %pool = global_avg_pool2d(%x) {keepdims=true, layout="nchw"} : f32[N,\(channels),1,1]
            %reduce = conv2d(%pool, @reduce/kernel, @reduce/bias) {activation="relu", kernel_layout="oihw", layout="nchw"} : f32[N,\(reduced),1,1]
            %expand = conv2d(%reduce, @expand/kernel, @expand/bias) {activation="sigmoid", kernel_layout="oihw", layout="nchw"} : f32[N,\(channels),1,1]
            output gate = %expand
            """
    }

    /// The gate in Double, from its definition: [image][channel].
    private func reference(_ input: [Float], batch: Int) -> [Double] {
        let (channels, reduced, pixels) = (Self.channels, Self.reduced, Self.size * Self.size)
        let (reduceKernel, reduceBias) = (values(reduced * channels, 1), values(reduced, 2))
        let (expandKernel, expandBias) = (values(channels * reduced, 3), values(channels, 4))
        var result: [Double] = []
        for image in 0..<batch {
            let pooled = (0..<channels).map { channel in
                (0..<pixels).reduce(0.0) { $0 + Double(input[(image * channels + channel) * pixels + $1]) } / Double(pixels)
            }
            let hidden = (0..<reduced).map { row in
                max(0, (0..<channels).reduce(reduceBias[row]) { $0 + reduceKernel[row * channels + $1] * pooled[$1] })
            }
            result += (0..<channels).map { row in
                let sum = (0..<reduced).reduce(expandBias[row]) { $0 + expandKernel[row * reduced + $1] * hidden[$1] }
                return 1 / (1 + exp(-sum))
            }
        }
        return result
    }

    func testOneByOneOnAOneByOneMapRunsAsNHWCWithTheSameValues() throws {
        let graph = try ShapeInference().run(parseIR(text)).graph
        for (name, inputs, outputs) in [("reduce", Self.channels, Self.reduced), ("expand", Self.reduced, Self.channels)] {
            let node = try XCTUnwrap(graph.nodes.first { $0.name == name })
            let geometry = try ConvolutionGeometry.resolve(node, input: Shape(known: [2, inputs, 1, 1]),
                                                           kernel: Shape(known: [outputs, inputs, 1, 1]))
            XCTAssertEqual(try Conv2DGeometry(geometry, batch: 2).layout, .nhwc, name)
        }
        for batch in [1, 2, 3] {
            let shape = [batch, Self.channels, Self.size, Self.size]
            let input = (0..<shape.reduce(1, *)).map { (index: Int) -> Float in Float((index * 13 + 3) % 17) * 0.15 - 1.2 }
            let expected = reference(input, batch: batch)
            for threads in [1, 2] {
                let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: threads))
                let actual = try XCTUnwrap(try model.run(["x": try Tensor(shape: shape, values: input)])["gate"]?.values)
                XCTAssertEqual(actual.count, expected.count)
                for (index, (got, want)) in zip(actual, expected).enumerated() where abs(Double(got) - want) > 1e-5 {
                    XCTFail("batch \(batch), \(threads) threads: [\(index)] \(got) against \(want)")
                    break
                }
            }
        }
    }

    /// A padded filter or a wider map reads other floats in each layout: those keep NCHW.
    func testOtherNCHWConvolutionsKeepTheirLayout() throws {
        for (kernel, map, pads) in [(3, 1, 1), (1, 2, 0)] {
            let text = """
                graph kept
                input %x: f32[N,8,\(map),\(map)]
                const @k: f32[4,8,\(kernel),\(kernel)] kernel
                %y = conv2d(%x, @k) {kernel_layout="oihw", layout="nchw", padding="explicit", pads=[\(pads),\(pads),\(pads),\(pads)]} : ?
                output y = %y
                """
            let graph = try ShapeInference().run(parseIR(text)).graph
            let node = try XCTUnwrap(graph.nodes.first)
            let geometry = try ConvolutionGeometry.resolve(node, input: Shape(known: [2, 8, map, map]),
                                                           kernel: Shape(known: [4, 8, kernel, kernel]))
            XCTAssertEqual(try Conv2DGeometry(geometry, batch: 2).layout, .nchw, "\(kernel)×\(kernel) on \(map)×\(map)")
        }
    }
}
