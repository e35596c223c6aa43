import KeelIR
import KeelPasses
import XCTest

/// Two groups of 16 channels, as ResNeSt's split attention has them (wider in the real network).
final class GroupedConvolutionSplittingTests: XCTestCase {
    /// A 3×3 NHWC convolution of 32 channels in `groups` groups with a bias and ReLU, the filter in
    /// `kernelLayout`, and `extra` attributes.
    private func grouped(groups: Int = 2, kernelLayout: String = "oihw", kernel: Int = 3, extra: String = "") throws -> Graph {
        let perGroup = 32 / groups
        let filter = kernelLayout == "oihw" ? "[32,\(perGroup),\(kernel),\(kernel)]" : "[\(kernel),\(kernel),\(perGroup),32]"
        let graph = bindTestWeights(try parseIR("""
            graph g
            input %x: f32[N,6,5,32] nhwc
            const @w: f32\(filter) kernel
            const @b: f32[32] bias
            %y = conv2d(%x, @w, @b) {activation="relu", groups=\(groups), kernel_layout="\(kernelLayout)", padding="same"\(extra)} : ?
            output y = %y
            """))
        return try ShapeInference().run(graph).graph
    }

    func testEachGroupBecomesAConvolution() throws {
        for layout in ["oihw", "hwio"] {
            let graph = try grouped(kernelLayout: layout)
            let result = try optimized(graph, [GroupedConvolutionSplitting()])
            XCTAssertEqual(result.graph.ops, [.split, .conv2d, .conv2d, .concat], layout)
            let convolutions = result.graph.nodes.filter { $0.op == .conv2d }
            XCTAssertEqual(convolutions.map { $0.attributes.int("groups") }, [1, 1])
            XCTAssertEqual(convolutions.map { $0.attributes.string("activation") }, ["relu", "relu"])
            let filters = convolutions.compactMap { result.graph.constants[$0.inputs[1]]?.type.shape.knownExtents }
            XCTAssertEqual(filters, Array(repeating: layout == "oihw" ? [16, 16, 3, 3] : [3, 3, 16, 16], count: 2))
            // Group 1's filter is the second half of the output channels: in OIHW its rows, in HWIO
            // the last 16 of every row of 32.
            let original = try XCTUnwrap(graph.constants["w"]?.data?.floats())
            let second = try XCTUnwrap(result.graph.constants[convolutions[1].inputs[1]]?.data?.floats())
            let expected = layout == "oihw" ? Array(original[(16 * 16 * 9)...])
                                            : stride(from: 16, to: original.count, by: 32).flatMap { original[$0..<($0 + 16)] }
            XCTAssertEqual(second, expected, layout)
            XCTAssertEqual(result.graph.constants[convolutions[1].inputs[2]]?.data?.floats(),
                           try XCTUnwrap(graph.constants["b"]?.data?.floats()).suffix(16).map { $0 }, layout)
            XCTAssertEqual(result.graph.outputs.first?.value, "y")
            try assertEquivalent(graph, result.graph)
        }
    }

    /// A split of the output into the groups' channels (ResNeSt's radix pieces) reads the groups'
    /// outputs; the concatenation stays for the product that reads it whole.
    func testASplitIntoTheGroupsReadsTheGroupsOutputs() throws {
        let graph = bindTestWeights(try ShapeInference().run(parseIR("""
            graph g
            input %x: f32[N,6,5,32] nhwc
            const @w: f32[32,16,3,3] kernel
            %y = conv2d(%x, @w) {groups=2, kernel_layout="oihw", padding="same"} : ?
            %first, %second = split(%y) {axis=3} : ?, ?
            %sum = add(%first, %second) : ?
            %scaled = mul(%y, %y) : ?
            output sum = %sum
            output scaled = %scaled
            """)).graph)
        let result = try optimized(graph, [GroupedConvolutionSplitting()])
        XCTAssertEqual(result.graph.ops, [.split, .conv2d, .conv2d, .concat, .add, .mul])
        let convolutions = result.graph.nodes.filter { $0.op == .conv2d }.map(\.outputs[0])
        XCTAssertEqual(result.graph.nodes.first { $0.op == .add }?.inputs, convolutions)
        try assertEquivalent(graph, result.graph)
    }

    /// Eight groups of 4 channels suit the grouped kernel; a 1×1 or strided convolution gains no
    /// Winograd tiles by splitting.
    func testOtherConvolutionsStayGrouped() throws {
        for graph in [try grouped(groups: 8), try grouped(kernel: 1), try grouped(extra: ", strides=[2,2]")] {
            let result = try optimized(graph, [GroupedConvolutionSplitting()])
            XCTAssertEqual(result.graph.ops, [.conv2d])
        }
    }
}
