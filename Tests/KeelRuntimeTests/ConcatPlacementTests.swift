import Foundation
import KeelIR
import KeelKernels
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

    /// `extraReader` adds a relu of the first concatenation as a second output; `pointwise` makes
    /// each layer's new channels a 1×1 convolution of its batch_norm + ReLU (DenseNet), not a slice.
    private func graphText(_ style: Style, channelsLast: Bool, extraReader: Bool = false, pointwise: Bool = false) -> String {
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
            let weights = (0..<(2 * width)).map { String(Double(($0 * 7 + layer) % 11) * 0.2 - 1) }.joined(separator: ", ")
            lines.append("const @w\(layer + 1): f32[1,1,\(width),2] kernel frozen = [\(weights)]")
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
            let activation = pointwise ? ", activation=\"relu\"" : ""
            lines.append("%b\(number) = batch_norm(\(concatenated), \(parameters)) {epsilon=0.0, axis=\(axis)\(activation)} : \(type(width))")
            if pointwise {
                lines.append("%f\(number) = conv2d(%b\(number), @w\(number)) : \(type(2))")
            } else {
                lines.append("%f\(number) = slice(%b\(number)) {starts=[\(layer)], ends=[\(layer + 2)], axes=[\(axis)]} : \(type(2))")
            }
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

    private func graph(_ style: Style, channelsLast: Bool, extraReader: Bool = false, pointwise: Bool = false) throws -> Graph {
        try ShapeInference().run(parseIR(graphText(style, channelsLast: channelsLast, extraReader: extraReader,
                                                   pointwise: pointwise))).graph
    }

    private func placement(_ graph: Graph, batch: Int, writesPixelRows: (Int) -> Bool = { _ in false }) -> ConcatPlacement {
        var shapes: [String: [Int]] = [:]
        for (name, type) in graph.valueTypes { shapes[name] = type.shape.binding(["N": batch]).knownExtents }
        let outputs = Set(graph.outputs.map(\.value))
        return ConcatPlacement(graph: graph, shapes: shapes, pinned: outputs, isActivation: { graph.constants[$0] == nil },
                               writesPixelRows: writesPixelRows)
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

    /// NHWC batch_norm + ReLU → 1×1 convolution: the convolution applies the batch_norm while packing
    /// the concatenation's slice of the shared buffer, and the batch_norm's step is gone.
    func testPointwiseConvolutionsAbsorbTheirBatchNorms() throws {
        for style in [Style.chain, .featureList] {
            let model = try CompiledModel(graph: try graph(style, channelsLast: true, pointwise: true),
                                          context: ExecutionContext(threads: 1))
            let choices = try model.kernelChoices(bindings: ["N": 2])
            let steps = Set(choices.map(\.node))
            XCTAssertEqual(steps.isDisjoint(with: ["b1", "b2", "b3"]), PanelGEMM.hasPrologue, "\(style): \(steps)")
            XCTAssertTrue(steps.isSuperset(of: ["f1", "f2", "f3"]), "\(style): \(steps)")
            let convolution = try XCTUnwrap(choices.first { $0.node == "f2" })
            // Its new channels go straight into the shared buffer (`testInceptionBranchesWriteIntoTheirConcatenation`).
            XCTAssertEqual(convolution.choice.algorithm,
                           (PanelGEMM.hasPrologue ? "pointwise+batch_norm" : "pointwise") + "+into_concat")
        }
    }

    func testValuesMatchTheReferenceAtEveryBatchAndThreadCount() throws {
        let variants: [(Style, extraReader: Bool, pointwise: Bool, layouts: [Bool])] = [
            (.chain, false, false, [true, false]), (.featureList, false, false, [true, false]),
            (.chain, true, false, [true, false]), (.chain, false, true, [true]), (.featureList, false, true, [true]),
        ]
        for (style, extraReader, pointwise, layouts) in variants {
            for channelsLast in layouts {
                let graph = try graph(style, channelsLast: channelsLast, extraReader: extraReader, pointwise: pointwise)
                for batch in [1, 2, 3] {
                    let shape = channelsLast ? [batch, 3, 4, 3] : [batch, 3, 3, 4]
                    let input = (0..<shape.reduce(1, *)).map { index -> Float in Float((index * 29 + 5) % 23) * 0.3 - 3 }
                    let expected = reference(graph, input: input, shape: shape, channelsLast: channelsLast)
                    // Image by image, each image's steps write their slice of the shared buffers.
                    for schedule in [BatchSchedule.wholeBatch, .imageByImage] {
                        var first: [String: [Float]]?
                        for threads in [1, 2] {
                            let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: threads,
                                                                                                  batchSchedule: schedule))
                            let results = try model.run(["x": try Tensor(shape: shape, values: input)])
                            let label = "\(style) extra \(extraReader) pointwise \(pointwise) NHWC \(channelsLast) batch \(batch) "
                                + "threads \(threads) \(schedule)"
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
    }

    // MARK: - Convolutions writing into their concatenation

    /// An Inception block, NHWC: a 1×1 and a 3×3 convolution (bias, ReLU) and a 3×3 max pool of the
    /// same input, concatenated. `extraReader` also outputs the 1×1 branch; `shortcut` adds the
    /// input to the 3×3 branch as a residual the convolution fuses; `pinned` outputs the
    /// concatenation itself rather than its sigmoid.
    private func inceptionText(extraReader: Bool = false, shortcut: Bool = false, pinned: Bool = false) -> String {
        func values(_ count: Int, _ seed: Int) -> String {
            (0..<count).map { String(Double(($0 * 37 + seed * 11) % 29) * 0.05 - 0.7) }.joined(separator: ", ")
        }
        let wideOutputs = shortcut ? 8 : 6
        var lines = [
            "graph inception", "input %x: f32[N,6,9,8]",
            "const @k1: f32[1,1,8,5] kernel frozen = [\(values(40, 1))]",
            "const @b1: f32[5] bias frozen = [\(values(5, 2))]",
            "const @k3: f32[3,3,8,\(wideOutputs)] kernel frozen = [\(values(72 * wideOutputs, 3))]",
            "const @b3: f32[\(wideOutputs)] bias frozen = [\(values(wideOutputs, 4))]",
            "%a = conv2d(%x, @k1, @b1) {activation=\"relu\"} : f32[N,6,9,5]",
            // The shortcut as epilogue fusion leaves it: the convolution's fourth input, added before the ReLU.
            "%w = conv2d(%x, @k3, @b3\(shortcut ? ", %x" : "")) {activation=\"relu\", padding=\"same\"} : f32[N,6,9,\(wideOutputs)]",
        ]
        let channels = 5 + wideOutputs + 8
        lines += [
            "%p = max_pool2d(%x) {padding=\"explicit\", pads=[1,1,1,1], pool_size=[3,3], strides=[1,1]} : f32[N,6,9,8]",
            "%c = concat(%a, %w, %p) {axis=3} : f32[N,6,9,\(channels)]",
        ]
        if pinned {
            lines.append("output y = %c")
        } else {
            lines += ["%y = sigmoid(%c) : f32[N,6,9,\(channels)]", "output y = %y"]
        }
        if extraReader { lines.append("output a = %a") }
        return lines.joined(separator: "\n")
    }

    /// The Inception block in Double, straight from its definition: [image][row][column][channel].
    private func inceptionReference(_ input: [Float], batch: Int, shortcut: Bool, sigmoid: Bool) -> [Double] {
        let (height, width, channels) = (6, 9, 8)
        func values(_ count: Int, _ seed: Int) -> [Double] { (0..<count).map { Double(($0 * 37 + seed * 11) % 29) * 0.05 - 0.7 } }
        let wideOutputs = shortcut ? 8 : 6
        let (k1, b1, k3, b3) = (values(40, 1), values(5, 2), values(72 * wideOutputs, 3), values(wideOutputs, 4))
        func x(_ image: Int, _ row: Int, _ column: Int, _ channel: Int) -> Double? {
            guard (0..<height).contains(row), (0..<width).contains(column) else { return nil }
            return Double(input[((image * height + row) * width + column) * channels + channel])
        }
        var result: [Double] = []
        for image in 0..<batch {
            for row in 0..<height {
                for column in 0..<width {
                    var pixel: [Double] = []
                    for output in 0..<5 {
                        let sum = (0..<channels).reduce(b1[output]) { $0 + (x(image, row, column, $1) ?? 0) * k1[$1 * 5 + output] }
                        pixel.append(max(0, sum))
                    }
                    for output in 0..<wideOutputs {
                        var sum = b3[output]
                        for dy in 0..<3 {
                            for dx in 0..<3 {
                                for channel in 0..<channels {
                                    let weight = k3[((dy * 3 + dx) * channels + channel) * wideOutputs + output]
                                    sum += (x(image, row + dy - 1, column + dx - 1, channel) ?? 0) * weight
                                }
                            }
                        }
                        // The shortcut is added before the activation, as the fused residual is.
                        if shortcut { sum += x(image, row, column, output) ?? 0 }
                        pixel.append(max(0, sum))
                    }
                    for channel in 0..<channels {
                        let window = (-1...1).flatMap { dy in (-1...1).compactMap { dx in x(image, row + dy, column + dx, channel) } }
                        pixel.append(window.max() ?? 0)
                    }
                    result += sigmoid ? pixel.map { 1 / (1 + exp(-$0)) } : pixel
                }
            }
        }
        return result
    }

    /// Inception's branches: each convolution writes its channels straight into the
    /// concatenation's buffer and the concatenation copies only the pool's; a convolution output
    /// with another reader, or whose kernel adds a shortcut, keeps its own buffer and is copied.
    /// Values match the Double reference at every batch, thread count and schedule.
    func testInceptionBranchesWriteIntoTheirConcatenation() throws {
        let variants: [(extraReader: Bool, shortcut: Bool, pinned: Bool, copied: [Int], algorithms: [String: String])] = [
            (false, false, false, [2], ["a": "pointwise+into_concat", "w": "+into_concat"]),
            (false, false, true, [2], ["a": "pointwise+into_concat", "w": "+into_concat"]),
            (true, false, false, [0, 2], ["a": "pointwise", "w": "+into_concat"]),
            (false, true, false, [1, 2], ["a": "pointwise+into_concat", "w": "+residual"]),
        ]
        for (extraReader, shortcut, pinned, copied, algorithms) in variants {
            let text = inceptionText(extraReader: extraReader, shortcut: shortcut, pinned: pinned)
            let label = "extra reader \(extraReader), shortcut \(shortcut), pinned \(pinned)"
            for batch in [1, 2, 3] {
                let shape = [batch, 6, 9, 8]
                let input = (0..<shape.reduce(1, *)).map { (index: Int) -> Float in Float((index * 13 + 3) % 17) * 0.15 - 1.2 }
                let expected = inceptionReference(input, batch: batch, shortcut: shortcut, sigmoid: !pinned)
                for schedule in [BatchSchedule.wholeBatch, .imageByImage] {
                    for threads in [1, 2] {
                        let model = try CompiledModel(graph: try ShapeInference().run(parseIR(text)).graph,
                                                      context: ExecutionContext(threads: threads, batchSchedule: schedule))
                        let choices = try model.kernelChoices(bindings: ["N": batch])
                        for (node, suffix) in algorithms {
                            let algorithm = try XCTUnwrap(choices.first { $0.node == node }, label).choice.algorithm
                            XCTAssertTrue(algorithm.hasSuffix(suffix), "\(label): \(node) ran \(algorithm)")
                            if !suffix.hasSuffix("into_concat") { XCTAssertFalse(algorithm.contains("into_concat"), label) }
                        }
                        let results = try model.run(["x": try Tensor(shape: shape, values: input)])
                        let actual = try XCTUnwrap(results["y"]?.values, label)
                        XCTAssertEqual(actual.count, expected.count, label)
                        for (index, (got, want)) in zip(actual, expected).enumerated() where abs(Double(got) - want) > 1e-5 {
                            XCTFail("\(label) batch \(batch) threads \(threads) \(schedule): [\(index)] \(got) vs \(want)")
                            break
                        }
                    }
                }
            }
            let graph = try ShapeInference().run(parseIR(text)).graph
            XCTAssertEqual(copies(graph, placement(graph, batch: 2) { graph.nodes[$0].op == .conv2d && graph.nodes[$0]
                .inputs.count < 4 }), ["c": copied], label)
        }
    }

    /// A NaN is traced to the step that made it, not to a convolution whose slice shares a buffer
    /// with a branch that still holds the last run's NaN.
    func testANaNIsTracedPastTheSlicesOfASharedBuffer() throws {
        var lines = inceptionText().split(separator: "\n").map(String.init)
        let wide = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("%w = conv2d(%x") })
        lines[wide] = lines[wide].replacingOccurrences(of: "conv2d(%x", with: "conv2d(%n")
        lines.insert("%n = sqrt(%x) : f32[N,6,9,8]", at: wide)
        let model = try CompiledModel(graph: try ShapeInference().run(parseIR(lines.joined(separator: "\n"))).graph,
                                      context: ExecutionContext(threads: 1))
        XCTAssertTrue(try model.kernelChoices(bindings: ["N": 1]).contains { $0.node == "a" && $0.choice.algorithm.hasSuffix("into_concat") })
        let input = try Tensor(shape: [1, 6, 9, 8], values: (0..<432).map { Float($0 % 7) - 3 })
        let first = try model.run(["x": input])
        XCTAssertTrue(try XCTUnwrap(first["y"]?.values).contains { $0.isNaN })
        guard case .node(let name, _, _)? = try model.firstNonFinite(["x": input]) else { return XCTFail("no origin") }
        XCTAssertEqual(name, "n")
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
                let relu = (try? attributes.string("activation")) == "relu"
                values[node.outputs[0]] = build(inputs[0].channels) { row, channel, index in
                    let value = (at(inputs[0], row, channel, index) - vectors[2][channel]) / vectors[3][channel].squareRoot()
                        * vectors[0][channel] + vectors[1][channel]
                    return relu ? max(0, value) : value
                }
            case .conv2d:
                // 1×1, NHWC, [1, 1, in, out] filter.
                let weights = graph.constants[node.inputs[1]]?.data?.floats().map(Double.init) ?? []
                values[node.outputs[0]] = build(2) { row, output, index in
                    (0..<inputs[0].channels).reduce(0) { $0 + at(inputs[0], row, $1, index) * weights[$1 * 2 + output] }
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
