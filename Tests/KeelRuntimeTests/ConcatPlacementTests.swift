import Foundation
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// DenseNet-shaped graphs (Keras: each concatenation takes the previous one; PyTorch: each takes
/// the whole list of features) in both layouts: which concatenations share the last one's buffer,
/// what each copies, and that the plan's values match a reference computed here at every batch
/// and thread count, also when a concatenation has a reader that cannot take a strided slice.
final class ConcatPlacementTests: XCTestCase {
    /// Channel counts of the three batch_norms: 3 input channels growing by 2.
    private static let widths = [3, 5, 7]

    private enum Style { case chain, featureList }

    /// `extraReader` adds a relu of the first concatenation as a second output.
    private func graphText(_ style: Style, channelsLast: Bool, extraReader: Bool = false) -> String {
        let axis = channelsLast ? 3 : 1
        func type(_ channels: Int) -> String { channelsLast ? "f32[N,3,4,\(channels)]" : "f32[N,\(channels),3,4]" }
        var lines = ["graph g", "input %x: \(type(3))"]
        for (layer, width) in Self.widths.enumerated() {
            let vectors: [(String, (Int) -> Double)] = [("gamma", { 0.5 + 0.25 * Double($0) }), ("beta", { 0.1 * Double($0) - 0.2 }),
                                                         ("mean", { 0.05 * Double($0) }), ("variance", { 1 + 0.5 * Double($0) })]
            for (name, value) in vectors {
                let values = (0..<width).map { String(value($0 + layer)) }.joined(separator: ", ")
                lines.append("const @bn\(layer + 1)/\(name): f32[\(width)] \(name == "mean" ? "moving_mean" : name == "variance" ? "moving_variance" : name) frozen = [\(values)]")
            }
        }
        lines.append("%a = sigmoid(%x) : \(type(3))")
        var features = ["%a"]
        var previous = "%a"
        for (layer, width) in Self.widths.enumerated() {
            let number = layer + 1
            let concatenated: String
            switch style {
            case .chain:
                concatenated = previous
            case .featureList:
                concatenated = "%c\(number)"
                lines.append("\(concatenated) = concat(\(features.joined(separator: ", "))) {axis=\(axis)} : \(type(width))")
            }
            let parameters = ["gamma", "beta", "mean", "variance"].map { "@bn\(number)/\($0)" }.joined(separator: ", ")
            lines.append("%b\(number) = batch_norm(\(concatenated), \(parameters)) {epsilon=0.0, axis=\(axis)} : \(type(width))")
            lines.append("%f\(number) = slice(%b\(number)) {starts=[\(layer)], ends=[\(layer + 2)], axes=[\(axis)]} : \(type(2))")
            features.append("%f\(number)")
            if style == .chain {
                let name = layer == Self.widths.count - 1 ? "%last" : "%c\(number)"
                lines.append("\(name) = concat(\(previous), %f\(number)) {axis=\(axis)} : \(type(width + 2))")
                previous = name
            }
        }
        if style == .featureList {
            lines.append("%last = concat(\(features.joined(separator: ", "))) {axis=\(axis)} : \(type(9))")
        }
        lines.append("%y = sigmoid(%last) : \(type(9))")
        lines.append("output y = %y")
        if extraReader {
            lines.append("%r = relu(%c1) : \(type(5))")
            lines.append("output r = %r")
        }
        return lines.joined(separator: "\n")
    }

    private func graph(_ style: Style, channelsLast: Bool, extraReader: Bool = false) throws -> Graph {
        try ShapeInference().run(parseIR(graphText(style, channelsLast: channelsLast, extraReader: extraReader))).graph
    }

    private func placement(_ graph: Graph, batch: Int) -> ConcatPlacement {
        var shapes: [String: [Int]] = [:]
        for (name, type) in graph.valueTypes { shapes[name] = type.shape.binding(["N": batch]).knownExtents }
        let outputs = Set(graph.outputs.map(\.value))
        return ConcatPlacement(graph: graph, shapes: shapes, pinned: outputs) { graph.constants[$0] == nil }
    }

    /// Copied input positions by concatenation name.
    private func copies(_ graph: Graph, _ placement: ConcatPlacement) -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for (index, write) in placement.writes { result[graph.nodes[index].name] = write.copied }
        return result
    }

    func testKerasChainSharesTheLastBufferAndCopiesOnlyNewChannels() throws {
        for channelsLast in [true, false] {
            let graph = try graph(.chain, channelsLast: channelsLast)
            let placement = placement(graph, batch: 2)
            XCTAssertEqual(Set(placement.regions.keys), ["c1", "c2"])
            XCTAssertEqual(placement.regions["c2"]?.root, "last")
            XCTAssertEqual(copies(graph, placement), ["c1": [0, 1], "c2": [1], "last": [1]])
            // Rows of the last concatenation's 9 channels: a pixel's (NHWC) or an image's (NCHW).
            let rowStride = channelsLast ? 9 : 9 * 12
            XCTAssertEqual(placement.regions["c1"]?.rows, ConcatPlacement.Rows(
                count: channelsLast ? 24 : 2, length: channelsLast ? 5 : 5 * 12, stride: rowStride))
        }
    }

    func testFeatureListCopiesEachFeatureOnce() throws {
        for channelsLast in [true, false] {
            let graph = try graph(.featureList, channelsLast: channelsLast)
            let placement = placement(graph, batch: 2)
            XCTAssertEqual(Set(placement.regions.keys), ["c1", "c2", "c3"])
            XCTAssertEqual(copies(graph, placement), ["c1": [0], "c2": [1], "c3": [2], "last": [3]])
            XCTAssertFalse(placement.reads(node: try XCTUnwrap(graph.nodes.firstIndex { $0.name == "last" }), position: 0))
        }
    }

    func testAReaderThatNeedsContiguousValuesKeepsItsConcatenationApart() throws {
        let graph = try graph(.chain, channelsLast: true, extraReader: true)
        let placement = placement(graph, batch: 1)
        XCTAssertEqual(Set(placement.regions.keys), ["c2"])
        XCTAssertEqual(copies(graph, placement), ["c2": [0, 1], "last": [1]])
    }

    func testValuesMatchTheReferenceAtEveryBatchAndThreadCount() throws {
        for (style, extraReader) in [(Style.chain, false), (.featureList, false), (.chain, true)] {
            for channelsLast in [true, false] {
                let graph = try graph(style, channelsLast: channelsLast, extraReader: extraReader)
                for batch in [1, 2] {
                    let shape = channelsLast ? [batch, 3, 4, 3] : [batch, 3, 3, 4]
                    let input = (0..<shape.reduce(1, *)).map { Float(($0 * 29 + 5) % 23) * 0.3 - 3 }
                    let expected = reference(graph, input: input, shape: shape, channelsLast: channelsLast)
                    var first: [String: [Float]]?
                    for threads in [1, 2] {
                        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: threads))
                        let results = try model.run(["x": try Tensor(shape: shape, values: input)])
                        let label = "\(style) extra \(extraReader) NHWC \(channelsLast) batch \(batch) threads \(threads)"
                        var actual: [String: [Float]] = [:]
                        for (name, values) in expected {
                            let result = try XCTUnwrap(results[name]?.values, label)
                            XCTAssertEqual(result.count, values.count, label)
                            for (got, want) in zip(result, values) { XCTAssertEqual(Double(got), want, accuracy: 1e-5, label) }
                            actual[name] = result
                        }
                        if let first { XCTAssertEqual(actual, first, "\(label): thread count changed the values") }
                        first = actual
                    }
                }
            }
        }
    }

    /// The graphs' values computed op by op in Double, straight from their definitions.
    private func reference(_ graph: Graph, input: [Float], shape: [Int], channelsLast: Bool) -> [String: [Double]] {
        // Every value as [outer, channels, inner] along the channel axis.
        let (outer, inner) = channelsLast ? (shape[0] * 12, 1) : (shape[0], 12)
        var values: [String: (data: [Double], channels: Int)] = ["x": (input.map(Double.init), 3)]
        func at(_ value: (data: [Double], channels: Int), _ row: Int, _ channel: Int, _ index: Int) -> Double {
            value.data[(row * value.channels + channel) * inner + index]
        }
        func build(_ channels: Int, _ element: (Int, Int, Int) -> Double) -> (data: [Double], channels: Int) {
            var data: [Double] = []
            for row in 0..<outer { for channel in 0..<channels { for index in 0..<inner { data.append(element(row, channel, index)) } } }
            return (data, channels)
        }
        for node in graph.nodes {
            let inputs = node.presentInputs.compactMap { values[$0] }
            let attributes = AttributeReader(node: node)
            switch node.op {
            case .sigmoid:
                values[node.outputs[0]] = (inputs[0].data.map { 1 / (1 + exp(-$0)) }, inputs[0].channels)
            case .relu:
                values[node.outputs[0]] = (inputs[0].data.map { max(0, $0) }, inputs[0].channels)
            case .batchNorm:
                let vectors = node.inputs[1...4].map { graph.constants[$0]?.data?.floats().map(Double.init) ?? [] }
                values[node.outputs[0]] = build(inputs[0].channels) { row, channel, index in
                    (at(inputs[0], row, channel, index) - vectors[2][channel]) / vectors[3][channel].squareRoot()
                        * vectors[0][channel] + vectors[1][channel]
                }
            case .slice:
                let start = (try? attributes.ints("starts"))?.first ?? 0
                values[node.outputs[0]] = build(2) { at(inputs[0], $0, start + $1, $2) }
            case .concat:
                let total = inputs.reduce(0) { $0 + $1.channels }
                values[node.outputs[0]] = build(total) { row, channel, index in
                    var channel = channel
                    for input in inputs {
                        if channel < input.channels { return at(input, row, channel, index) }
                        channel -= input.channels
                    }
                    return .nan
                }
            default:
                XCTFail("no reference for \(node.op)")
            }
        }
        var result: [String: [Double]] = [:]
        for output in graph.outputs { result[output.name] = values[output.value]?.data }
        return result
    }
}
