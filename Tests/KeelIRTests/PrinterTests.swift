import KeelIR
import XCTest

/// A small conv -> pool -> flatten -> dense graph with hand-written types and locations.
func tinyGraph() -> Graph {
    func constant(_ name: String, _ shape: Shape, _ role: ParameterRole, trainable: Bool) -> (String, Constant) {
        (name, Constant(name: name, type: TensorType(.float32, shape), role: role, trainable: trainable))
    }
    let file = "models/tiny.keel"
    return Graph(
        name: "tiny",
        inputs: [GraphInput(name: "image", type: f32("N", 8, 8, 3), layout: .nhwc)],
        constants: Dictionary(uniqueKeysWithValues: [
            constant("fc/bias", [2], .bias, trainable: true),
            constant("fc/kernel", [64, 2], .kernel, trainable: true),
            constant("c1/bias", [4], .bias, trainable: false),
            constant("c1/kernel", [3, 3, 3, 4], .kernel, trainable: false),
        ]),
        nodes: [
            Node(name: "c1", op: .conv2d, inputs: ["image", "c1/kernel", "c1/bias"], outputs: ["c1"],
                 attributes: Attributes(["padding": .string("same"), "activation": .string("relu")]),
                 locations: [SourceLocation(file: file, line: 3, column: 5)]),
            Node(name: "pool1", op: .maxPool2d, inputs: ["c1"], outputs: ["pool1"]),
            Node(name: "act", op: .leakyRelu, inputs: ["pool1"], outputs: ["act"], attributes: Attributes(["alpha": .float(0.1)])),
            Node(name: "flat", op: .flatten, inputs: ["act"], outputs: ["flat"]),
            Node(name: "fc", op: .dense, inputs: ["flat", "fc/kernel", "fc/bias"], outputs: ["fc"],
                 attributes: Attributes(["activation": .string("softmax")]),
                 locations: [SourceLocation(file: file, line: 6, column: 5)]),
        ],
        outputs: [GraphOutput(name: "logits", value: "fc")],
        valueTypes: ["c1": f32("N", 8, 8, 4), "pool1": f32("N", 4, 4, 4), "act": f32("N", 4, 4, 4),
                     "flat": f32("N", 64), "fc": f32("N", 2)])
}

final class PrinterTests: XCTestCase {
    func testGoldenText() {
        let expected = """
        graph tiny
        input %image: f32[N,8,8,3] nhwc
        const @c1/kernel: f32[3,3,3,4] kernel frozen
        const @c1/bias: f32[4] bias frozen
        const @fc/kernel: f32[64,2] kernel
        const @fc/bias: f32[2] bias
        %c1 = conv2d(%image, @c1/kernel, @c1/bias) {activation="relu", padding="same"} : f32[N,8,8,4]  # tiny.keel:3:5
        %pool1 = max_pool2d(%c1) : f32[N,4,4,4]
        %act = leaky_relu(%pool1) {alpha=0.1} : f32[N,4,4,4]
        %flat = flatten(%act) : f32[N,64]
        %fc = dense(%flat, @fc/kernel, @fc/bias) {activation="softmax"} : f32[N,2]  # tiny.keel:6:5
        output logits = %fc

        """
        XCTAssertEqual(printIR(tinyGraph()), expected)
        XCTAssertEqual(tinyGraph().irText, expected)
    }

    func testAbsentInputsUnknownTypesAndFusedLocations() {
        var graph = tinyGraph()
        graph.nodes[4].inputs = ["flat", "fc/kernel", ""]
        graph.nodes[4].locations.append(SourceLocation(file: "/abs/tiny.keel", line: 7, column: 1))
        graph.valueTypes["fc"] = nil
        let line = printIR(graph).split(separator: "\n").first { $0.hasPrefix("%fc") }
        XCTAssertEqual(line.map(String.init),
                       "%fc = dense(%flat, @fc/kernel) {activation=\"softmax\"} : ?  # tiny.keel:6:5, tiny.keel:7:1")
    }
}
