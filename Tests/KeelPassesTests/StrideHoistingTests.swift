import KeelIR
import KeelPasses
import XCTest

final class StrideHoistingTests: XCTestCase {
    /// Keras ResNet50's stage boundary in small: a bottleneck block (1×1, 3×3 "same", 1×1 plus
    /// the shortcut, ReLU) whose output two 1×1 stride-2 convs read. `readers` gives each reader's
    /// stride and padding; `output` also makes the block's sum a graph output.
    private func stageBoundary(layout: Layout = .nhwc, size: Int = 9, readers: [(stride: Int, padded: Bool)] = [(2, false), (2, false)],
                               output: Bool = false) -> KerasGraphBuilder {
        let nhwc = layout == .nhwc
        let shape: [Dim] = nhwc ? ["N", .known(size), .known(size), 8] : ["N", 8, .known(size), .known(size)]
        var builder = KerasGraphBuilder(name: "g", shape: Shape(shape), layout: layout)
        func kernel(_ side: Int, _ input: Int, _ output: Int) -> Shape {
            Shape(known: nhwc ? [side, side, input, output] : [output, input, side, side])
        }
        let common: [String: AttributeValue] = ["layout": .string(layout.rawValue), "kernel_layout": .string(nhwc ? "hwio" : "oihw")]
        builder.layer("reduce", .conv2d, parameters: [(.kernel, kernel(1, 8, 4)), (.bias, [4])],
                      common.merging(["activation": .string("relu")]) { $1 })
        builder.layer("spatial", .conv2d, parameters: [(.kernel, kernel(3, 4, 4)), (.bias, [4])],
                      common.merging(["padding": .string("same"), "activation": .string("relu")]) { $1 })
        builder.layer("expand", .conv2d, parameters: [(.kernel, kernel(1, 4, 8)), (.bias, [8])], common)
        builder.layer("sum", .add, inputs: ["input", "expand"])
        builder.layer("block", .relu)
        if output { builder.output("features") }
        for (index, reader) in readers.enumerated() {
            var attributes = common.merging(["strides": .ints([reader.stride, reader.stride])]) { $1 }
            if reader.padded { attributes.merge(["padding": .string("explicit"), "pads": .ints([1, 1, 1, 1])]) { $1 } }
            builder.layer("next\(index)", .conv2d, parameters: [(.kernel, kernel(1, 8, 6)), (.bias, [6])], inputs: ["block"],
                          attributes)
        }
        for index in readers.indices { builder.output("y\(index)", value: "next\(index)") }
        return builder
    }

    /// The readers' stride climbs through the last 1×1 (whose shortcut is sampled by a 1×1 max
    /// pool) into the 3×3, and stops at the first 1×1, which the 3×3 reads around each pixel.
    /// Odd sizes (9 → 5) and both layouts; the numbers are the unrewritten graph's.
    func testTheStrideClimbsToTheThreeByThree() throws {
        for layout in [Layout.nhwc, .nchw] {
            let graph = try prepared(stageBoundary(layout: layout))
            let fused = try optimized(graph, [EpilogueFusion()]).graph
            let result = try optimized(fused, [StrideHoisting()])
            XCTAssertEqual(result.log, ["stride-hoisting: 2 strides moved into the producing conv, 0 nodes removed, 0 weight bytes changed"])
            let strides = { (name: String) in result.graph.node(named: name)?.attributes["strides"] }
            XCTAssertEqual(strides("reduce"), nil, "\(layout)")
            XCTAssertEqual(strides("spatial"), .ints([2, 2]), "\(layout)")
            XCTAssertEqual(result.graph.node(named: "spatial")?.attributes["pads"], .ints([1, 1, 1, 1]))
            XCTAssertEqual(strides("expand"), .ints([1, 1]))
            XCTAssertEqual(strides("next0"), .ints([1, 1]))
            XCTAssertEqual(strides("next1"), .ints([1, 1]))
            let sampler = try XCTUnwrap(result.graph.nodes.first { $0.op == .maxPool2d })
            XCTAssertEqual(sampler.inputs, ["input"])
            XCTAssertEqual(result.graph.node(named: "expand")?.inputs.last, sampler.outputs.first)
            let block = try XCTUnwrap(result.graph.node(named: "expand")?.outputs.first)
            XCTAssertEqual(result.graph.valueTypes[block]?.shape, layout == .nhwc ? Shape(["N", 5, 5, 8]) : Shape(["N", 8, 5, 5]))
            XCTAssertEqual(result.graph.valueTypes["next0"], fused.valueTypes["next0"])
            try assertEquivalent(graph, result.graph)
        }
    }

    /// Left alone: a reader at stride 1, readers at different strides, a padded reader, and a
    /// block output the graph also returns.
    func testEveryReaderMustSampleTheSameWay() throws {
        let builders = [
            stageBoundary(readers: [(2, false), (1, false)]),
            stageBoundary(size: 12, readers: [(2, false), (3, false)]),
            stageBoundary(readers: [(2, false), (2, true)]),
            stageBoundary(output: true),
        ]
        for builder in builders {
            let fused = try optimized(try prepared(builder), [EpilogueFusion()]).graph
            let result = try optimized(fused, [StrideHoisting()])
            XCTAssertEqual(result.graph, fused)
            XCTAssertEqual(result.explanations, [])
        }
    }
}
