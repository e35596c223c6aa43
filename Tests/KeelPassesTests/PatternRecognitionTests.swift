import KeelIR
import KeelPasses
import XCTest

/// layer-norm-recognition and gelu-recognition on the exporters' spellings, written as IR text:
/// the rewritten graph holds the one op and computes what the primitive ops did (random inputs,
/// random gamma and beta); near misses stay as they were.
final class PatternRecognitionTests: XCTestCase {
    /// Parses `text`, infers it, gives `literals` their values and every other constant random ones.
    private func graph(_ text: String, literals: [String: Float]) throws -> Graph {
        var graph = try ShapeInference().run(try parseIR(text, file: "in.ir")).graph
        for (name, value) in literals {
            let shape = try XCTUnwrap(graph.constants[name]?.type.shape.knownExtents, name)
            graph.constants[name]?.data = TensorData(floats: Array(repeating: value, count: shape.reduce(1, *)), shape: shape)
        }
        return bindTestWeights(graph)
    }

    private let pytorchDecomposed = """
        graph g
        input %x: f32[N,5,8]
        const @two: f32[] literal
        const @eps: f32[] literal
        const @weight: f32[8] gamma
        const @bias: f32[8] beta
        %mean = reduce_mean(%x) {axes=[-1], keepdims=true} : f32[N,5,1]
        %centred = sub(%x, %mean) : f32[N,5,8]
        %squared = pow(%centred, @two) : f32[N,5,8]
        %variance = reduce_mean(%squared) {axes=[-1], keepdims=true} : f32[N,5,1]
        %shifted = add(%variance, @eps) : f32[N,5,1]
        %deviation = sqrt(%shifted) : f32[N,5,1]
        %normalised = div(%centred, %deviation) : f32[N,5,8]
        %scaled = mul(%normalised, @weight) : f32[N,5,8]
        %y = add(%scaled, @bias) : f32[N,5,8]
        output y = %y
        """

    func testPyTorchDecomposedLayerNormBecomesOneOp() throws {
        let original = try graph(pytorchDecomposed, literals: ["two": 2, "eps": 1e-5])
        let result = try optimized(original, [LayerNormRecognition()])
        XCTAssertEqual(result.graph.ops, [.layerNorm])
        let node = try XCTUnwrap(result.graph.node(named: "y"))
        XCTAssertEqual(node.attributes["axis"], .int(2))
        XCTAssertEqual(node.attributes["epsilon"], .float(1e-5))
        XCTAssertEqual(result.graph.outputs.map(\.value), ["y"])
        XCTAssertEqual(result.log, ["layer-norm-recognition: 1 layer norms recognised, 8 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(original, result.graph, batch: 3)
    }

    func testTensorFlowAffineFormWithNegatedShiftBecomesOneOp() throws {
        let original = try graph("""
            graph g
            input %x: f32[N,6,8]
            const @eps: f32[] literal
            const @gamma: f32[8] gamma
            %mean = reduce_mean(%x) {axes=[2], keepdims=true} : f32[N,6,1]
            %difference = sub(%x, %mean) : f32[N,6,8]
            %squared = mul(%difference, %difference) : f32[N,6,8]
            %variance = reduce_mean(%squared) {axes=[2], keepdims=true} : f32[N,6,1]
            %shifted = add(%variance, @eps) : f32[N,6,1]
            %root = sqrt(%shifted) : f32[N,6,1]
            %inverse = reciprocal(%root) : f32[N,6,1]
            %factor = mul(%inverse, @gamma) : f32[N,6,8]
            %mean_factor = mul(%mean, %factor) : f32[N,6,8]
            %shift = neg(%mean_factor) : f32[N,6,8]
            %scaled = mul(%x, %factor) : f32[N,6,8]
            %y = add(%scaled, %shift) : f32[N,6,8]
            output y = %y
            """, literals: ["eps": 1e-6])
        let result = try optimized(original, [LayerNormRecognition()])
        XCTAssertEqual(result.graph.ops, [.layerNorm])
        try assertEquivalent(original, result.graph)
    }

    /// A mean over two non-trailing axes (the batch among them), a variance of another tensor,
    /// and a mean over other axes than the variance's are not layer norms: nothing changes.
    func testNearMissesAreLeftAlone() throws {
        let variants = [
            pytorchDecomposed.replacingOccurrences(of: "axes=[-1]", with: "axes=[0, 1]")
                .replacingOccurrences(of: "f32[N,5,1]", with: "f32[1,1,8]"),
            pytorchDecomposed.replacingOccurrences(of: "%squared = pow(%centred, @two)", with: "%squared = pow(%x, @two)"),
            pytorchDecomposed.replacingOccurrences(of: "%variance = reduce_mean(%squared) {axes=[-1], keepdims=true} : f32[N,5,1]",
                                                   with: "%variance = reduce_mean(%squared) {axes=[1, 2], keepdims=true} : f32[N,1,1]"),
        ]
        for text in variants {
            let original = try graph(text, literals: ["two": 2, "eps": 1e-5])
            let result = try optimized(original, [LayerNormRecognition()])
            XCTAssertEqual(result.graph, original, text)
            XCTAssertEqual(result.log, ["layer-norm-recognition: 0 layer norms recognised, 0 nodes removed, 0 weight bytes changed"])
        }
    }

    private let tf2onnxGelu = """
        graph g
        input %x: f32[N,7]
        const @inverse_root_two: f32[] literal
        const @one: f32[] literal
        const @half: f32[] literal
        %argument = mul(%x, @inverse_root_two) : f32[N,7]
        %erf = erf(%argument) : f32[N,7]
        %plus_one = add(@one, %erf) : f32[N,7]
        %half_x = mul(@half, %x) : f32[N,7]
        %y = mul(%half_x, %plus_one) : f32[N,7]
        output y = %y
        """

    func testErfGeluBecomesOneOp() throws {
        let original = try graph(tf2onnxGelu, literals: ["inverse_root_two": Float(0.5.squareRoot()), "one": 1, "half": 0.5])
        let result = try optimized(original, [GeluRecognition()])
        XCTAssertEqual(result.graph.ops, [.gelu])
        XCTAssertEqual(result.graph.node(named: "y")?.attributes["approximate"], .string("none"))
        XCTAssertEqual(result.log, ["gelu-recognition: 1 GELUs recognised, 4 nodes removed, 0 weight bytes changed"])
        try assertEquivalent(original, result.graph)
    }

    func testOtherConstantsAreNotGelu() throws {
        for (name, value) in [("inverse_root_two", Float(0.6)), ("half", 0.4), ("one", 2)] {
            var literals: [String: Float] = ["inverse_root_two": Float(0.5.squareRoot()), "one": 1, "half": 0.5]
            literals[name] = value
            let original = try graph(tf2onnxGelu, literals: literals)
            XCTAssertEqual(try optimized(original, [GeluRecognition()]).graph, original, name)
        }
    }
}
