import Foundation
import KeelIR
@testable import KeelONNX
import KeelPasses
import XCTest

/// The import-time partial evaluator on small hand-written graphs (x: f32[N,4,6]).
final class ONNXFoldingTests: XCTestCase {
    private func node(_ op: String, _ inputs: [String], _ output: String,
                      _ attributes: [String: ONNXAttribute] = [:]) -> ONNXNode {
        ONNXNode(name: output, opType: op, domain: "", inputs: inputs, outputs: [output], attributes: attributes)
    }

    private func ints(_ name: String, _ values: [Int64], scalar: Bool = false) -> ONNXTensor {
        ONNXTensor(name: name, data: TensorData(int64s: values, shape: scalar ? [] : [values.count]))
    }

    private func importGraph(_ nodes: [ONNXNode], _ initializers: [ONNXTensor], output: String, opset: Int = 13) throws -> Graph {
        try importGraph(nodes, initializers, outputs: [output], opset: opset)
    }

    private func importGraph(_ nodes: [ONNXNode], _ initializers: [ONNXTensor], outputs: [String], opset: Int = 13) throws -> Graph {
        let graph = ONNXGraph(name: "folding", nodes: nodes, initializers: initializers,
                              inputs: [ONNXValueInfo(name: "x", elementType: 1, dims: [.param("N"), .value(4), .value(6)])],
                              outputs: outputs.map { ONNXValueInfo(name: $0, elementType: 1, dims: nil) }, valueInfo: [])
        return try importONNXGraph(ONNXModel(path: "folding.onnx", irVersion: 8, producerName: "", producerVersion: "",
                                             opsetImports: ["": opset], graph: graph))
    }

    /// [N,4,6] -> reshape to [shape[0], shape[1]*shape[2]]: batch copied, 4·6 = 24 computed.
    func testArithmeticOnKnownDimensions() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "zero"], "batch"),
            node("Gather", ["shape", "one"], "rows"),
            node("Gather", ["shape", "two"], "columns"),
            node("Mul", ["rows", "columns"], "features"),
            node("Unsqueeze", ["batch", "axes"], "batch_vec"),
            node("Unsqueeze", ["features", "axes"], "features_vec"),
            node("Concat", ["batch_vec", "features_vec"], "target", ["axis": .int(0)]),
            node("Reshape", ["x", "target"], "y"),
        ], [ints("zero", [0], scalar: true), ints("one", [1], scalar: true), ints("two", [2], scalar: true), ints("axes", [0])],
           output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.reshape])
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [0, 24])
        XCTAssertTrue(graph.constants.isEmpty)
    }

    /// The exporters' zero-safe reshape target: dims that are 0 become 1 (Equal, Where), then a
    /// Mod; all evaluated at import through the ops' reference semantics. The reciprocal of the
    /// result stays a node: x = [N,4,6], tail = [4,6], target = [-1, 4 mod 5, 6 mod 4] = [-1,4,2].
    func testEqualWhereModFoldAtImport() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Slice", ["shape", "one_vec", "three_vec"], "tail"),
            node("Equal", ["tail", "zero_vec"], "is_zero"),
            node("Where", ["is_zero", "one_vec", "tail"], "safe"),
            node("Mod", ["safe", "divisors"], "sizes", ["fmod": .int(0)]),
            node("Concat", ["minus_one", "sizes"], "target", ["axis": .int(0)]),
            node("Reshape", ["x", "target"], "reshaped"),
            node("Reciprocal", ["reshaped"], "y"),
        ], [ints("one_vec", [1]), ints("three_vec", [3]), ints("zero_vec", [0]), ints("divisors", [5, 4]), ints("minus_one", [-1])],
           output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.reshape, .reciprocal])
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [-1, 4, 2])
    }

    /// Not, as PyTorch's index_put writes it (Equal, Not, Where), folds like the comparisons:
    /// tail = [4,6], [4,6] == [4,0] is [true,false], not that is [false,true], so the target is
    /// [tail[0], -1] = [4,-1].
    func testNotFoldsAtImport() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Slice", ["shape", "one_vec", "three_vec"], "tail"),
            node("Equal", ["tail", "probe"], "same"),
            node("Not", ["same"], "different"),
            node("Where", ["different", "minus_one", "tail"], "target"),
            node("Reshape", ["x", "target"], "y"),
        ], [ints("one_vec", [1]), ints("three_vec", [3]), ints("probe", [4, 0]), ints("minus_one", [-1])], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.reshape])
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [4, -1])
    }

    /// Mod on floats keeps the dividend's sign only with fmod 1, as ONNX requires.
    func testModTranslatesWithItsFmodAttribute() throws {
        let graph = try importGraph([node("Mod", ["x", "x"], "y", ["fmod": .int(1)])], [], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.mod])
        XCTAssertEqual(graph.nodes.first?.attributes.int("fmod"), 1)
    }

    /// Flatten sized by ReduceProd over the known trailing dimensions.
    func testReduceProdOfKnownDimensions() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Slice", ["shape", "one_vec", "three_vec"], "tail"),
            node("ReduceProd", ["tail"], "features", ["keepdims": .int(1)]),
            node("Concat", ["minus_one", "features"], "target", ["axis": .int(0)]),
            node("Reshape", ["x", "target"], "y"),
        ], [ints("one_vec", [1]), ints("three_vec", [3]), ints("minus_one", [-1])], output: "y")
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [-1, 24])
    }

    /// Slice of a shape and opset 15's Shape start/end.
    func testSlicedShapes() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Slice", ["shape", "start", "end"], "batch_vec"),
            node("Shape", ["x"], "tail", ["start": .int(-2)]),
            node("Concat", ["batch_vec", "tail"], "target", ["axis": .int(0)]),
            node("Reshape", ["x", "target"], "y"),
        ], [ints("start", [0]), ints("end", [1])], output: "y", opset: 15)
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [0, 4, 6])
    }

    /// The batch may move: [N,4,6] -> [-1, N] is [24, N] for every N, so the run-time size
    /// becomes the -1 and the file's own -1 is worked out (24) from the element counts.
    func testBatchAtAnotherPositionBecomesTheInferredExtent() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "zero"], "batch"),
            node("Unsqueeze", ["batch", "axes"], "batch_vec"),
            node("Concat", ["minus_one", "batch_vec"], "target", ["axis": .int(0)]),
            node("Reshape", ["x", "target"], "y"),
        ], [ints("zero", [0], scalar: true), ints("axes", [0]), ints("minus_one", [-1])], output: "y")
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [24, -1])
        let typed = try ShapeInference().run(graph).graph
        XCTAssertEqual(typed.valueTypes[typed.outputs[0].value]?.shape, [24, "N"])
    }

    /// Two run-time sizes that are not the input's own at their positions cannot both be -1.
    func testTwoMovedRunTimeSizesAreRefused() throws {
        let error = onnxError({
            _ = try importGraph([
                node("Shape", ["x"], "shape"),
                node("Gather", ["shape", "zero"], "batch"),
                node("Unsqueeze", ["batch", "axes"], "batch_vec"),
                node("Concat", ["four", "batch_vec", "batch_vec"], "target", ["axis": .int(0)]),
                node("Reshape", ["x", "target"], "y"),
            ], [ints("zero", [0], scalar: true), ints("axes", [0]), ints("four", [4])], output: "y")
        })
        XCTAssertTrue(error?.description.contains("'y'") ?? false, String(describing: error))
        XCTAssertTrue(error?.description.contains("Keel can infer only one") ?? false, String(describing: error))
    }

    /// Token counts: ReduceProd over [N, 4] is 4·N, carried into the reshape as the -1, and
    /// the IR types say [4·N, 6]; back to [N, 4, 6] via Shape/Concat of the original.
    func testProductsOfTheBatchAreCarried() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Slice", ["shape", "zero_vec", "two_vec"], "leading"),
            node("ReduceProd", ["leading"], "rows", ["keepdims": .int(1)]),
            node("Concat", ["rows", "six"], "flat_target", ["axis": .int(0)]),
            node("Reshape", ["x", "flat_target"], "rows_by_six"),
            node("Shape", ["rows_by_six"], "flat_shape"),
            node("Gather", ["flat_shape", "zero"], "count"),
            node("Div", ["count", "four_scalar"], "batch"),
            node("Unsqueeze", ["batch", "axes"], "batch_vec"),
            node("Concat", ["batch_vec", "four", "six"], "target", ["axis": .int(0)]),
            node("Reshape", ["rows_by_six", "target"], "y"),
        ], [ints("zero", [0], scalar: true), ints("zero_vec", [0]), ints("two_vec", [2]), ints("six", [6]),
            ints("four", [4]), ints("four_scalar", [4], scalar: true), ints("axes", [0])], output: "y")
        XCTAssertEqual(graph.nodes.map { $0.attributes.ints("shape") }, [[-1, 6], [-1, 4, 6]])
        let typed = try ShapeInference().run(graph).graph
        XCTAssertEqual(typed.valueTypes[typed.nodes[0].outputs[0]]?.shape, [.scaled("N", by: 4), 6])
        XCTAssertEqual(typed.valueTypes[typed.outputs[0].value]?.shape, ["N", 4, 6])
    }

    /// The legacy PyTorch exporter's expand target: Where(Equal(shape, -1), 1, shape) is the
    /// shape itself, since a run-time size is never -1; Range and Mod fold over numbers.
    func testComparisonsAndSelectionsOverSizes() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Equal", ["shape", "minus_one"], "is_unset"),
            node("Where", ["is_unset", "one", "shape"], "target"),
            node("Range", ["zero", "three", "one_scalar"], "axes_range"),
            node("Mod", ["seven", "target_tail"], "remainder"),
            node("Gather", ["shape", "zero"], "batch"),
            node("Less", ["zero", "batch"], "positive"),
            node("Reshape", ["x", "target"], "y"),
        ], [ints("minus_one", [-1]), ints("one", [1]), ints("zero", [0], scalar: true), ints("three", [3], scalar: true),
            ints("one_scalar", [1], scalar: true), ints("seven", [7]), ints("target_tail", [4])],
           outputs: ["y", "axes_range", "remainder", "positive"])
        XCTAssertEqual(graph.nodes.first?.attributes.ints("shape"), [0, 4, 6])
        let folded = { (name: String) in graph.outputs.first { $0.name == name }.flatMap { graph.constants[$0.value]?.data?.int64s() } }
        XCTAssertEqual(folded("axes_range"), [0, 1, 2])
        XCTAssertEqual(folded("remainder"), [3])
        XCTAssertEqual(folded("positive"), [1])
    }

    /// A float Range of constants folds to its values, counted in float32 as ONNX does:
    /// Range(1, 2.2, 0.3) has ⌈1.2/0.3⌉ = 4 elements 1, 1.3, 1.6, 1.9; an empty range has none.
    /// A Range whose limit is a value computed at run time is refused, naming why.
    func testFloatRangeOfConstantsFoldsAndRunTimeRangeIsRefused() throws {
        let floats = { (name: String, value: Float) in ONNXTensor(name: name, data: TensorData(floats: [value], shape: [])) }
        let graph = try importGraph([
            node("Range", ["start", "limit", "delta"], "steps"),
            node("Range", ["limit", "start", "delta"], "empty"),
        ], [floats("start", 1), floats("limit", 2.2), floats("delta", 0.3)], outputs: ["steps", "empty"])
        let folded = { (name: String) in graph.outputs.first { $0.name == name }.flatMap { graph.constants[$0.value]?.data } }
        XCTAssertEqual(folded("steps")?.shape, [4])
        for (got, want) in zip(folded("steps")?.floats() ?? [], [Float(1), 1.3, 1.6, 1.9]) {
            XCTAssertEqual(got, want, accuracy: 1e-6)
        }
        XCTAssertEqual(folded("empty")?.shape, [0])

        let error = onnxError({
            _ = try importGraph([node("ReduceSum", ["x"], "total", ["keepdims": .int(0)]),
                                 node("Range", ["start", "total", "delta"], "y")],
                                [floats("start", 0), floats("delta", 1)], output: "y")
        })
        XCTAssertTrue(error?.description.contains("must be known when the model is compiled") ?? false, String(describing: error))
    }

    /// An integer range longer than shape arithmetic (MViTv2's positions over 56·56 tokens) is a
    /// constant: 3 to 3000 by 2 is 1499 numbers, 3 + 2i.
    func testLongIntegerRangeBecomesAConstant() throws {
        let graph = try importGraph([node("Range", ["start", "limit", "delta"], "y")],
                                    [ints("start", [3], scalar: true), ints("limit", [3000], scalar: true),
                                     ints("delta", [2], scalar: true)], output: "y")
        let values = try XCTUnwrap(graph.outputs.first.flatMap { graph.constants[$0.value]?.data })
        XCTAssertEqual(values.dtype, .int64)
        XCTAssertEqual(values.int64s(), (0..<1499).map { 3 + 2 * Int64($0) })
    }

    /// Range-27 also takes float16 operands, which Keel does not compute: refused by type, not
    /// read as some other number.
    func testHalfPrecisionRangeIsRefusedByType() {
        let half = { (name: String, bits: UInt16) in
            ONNXTensor(name: name, data: TensorData(dtype: .float16, shape: [], storage: TensorStorage(copying: [bits])))
        }
        let error = onnxError({
            _ = try importGraph([node("Range", ["start", "limit", "delta"], "y")],
                                [half("start", 0x3C00), half("limit", 0x4400), half("delta", 0x3800)], output: "y")
        })
        XCTAssertTrue(error?.description.contains("f16 operands are not supported") ?? false, String(describing: error))
    }

    /// PyTorch's exporter turns F.pad's pads (last axis first, begin/end pairs) into ONNX's order
    /// through a [axes, 2] table: reshape, rows reversed, transposed, flattened. On x = [N,4,6] with
    /// torch pads (1, 6 mod 4 = 2) on the last axis and (0, 3) on the middle one, ONNX pads are
    /// [0,0,1, 0,3,2] by hand, and y is [N,7,9].
    func testPyTorchPadsTableFolds() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "two"], "columns"),
            node("Mod", ["columns", "four"], "end"),
            node("Unsqueeze", ["end", "axes"], "end_vec"),
            node("Concat", ["one_vec", "end_vec", "middle", "zeros"], "torch_pads", ["axis": .int(0)]),
            node("Reshape", ["torch_pads", "table_shape"], "table"),
            node("Slice", ["table", "minus_one", "very_negative", "axes", "minus_one"], "reversed"),
            node("Transpose", ["reversed"], "columns_first", ["perm": .ints([1, 0])]),
            node("Reshape", ["columns_first", "minus_one"], "flat"),
            node("Cast", ["flat"], "pads", ["to": .int(7)]),
            node("Pad", ["x", "pads"], "y"),
        ], [ints("two", [2], scalar: true), ints("four", [4], scalar: true), ints("axes", [0]), ints("one_vec", [1]),
            ints("middle", [0, 3]), ints("zeros", [0, 0]), ints("table_shape", [-1, 2]), ints("minus_one", [-1]),
            ints("very_negative", [-Int64.max])],
           output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.pad])
        XCTAssertEqual(graph.nodes.first?.attributes.ints("pads"), [0, 0, 1, 0, 3, 2])
        let inferred = try ShapeInference().run(graph).graph
        XCTAssertEqual(inferred.valueTypes["y"]?.shape, Shape([.symbol("N"), .known(7), .known(9)]))
    }

    /// A table read by an op other than the ones that rearrange it is a constant of its own
    /// shape: [[0],[1],[2]] + [0,1,2] broadcasts to [3,3] (it was once added element by element).
    func testTableReadByArithmeticKeepsItsShape() throws {
        let graph = try importGraph([
            node("Reshape", ["range", "column"], "table"),
            node("Add", ["table", "range"], "sum"),
            node("Cast", ["sum"], "sum_f32", ["to": .int(1)]),
            node("Reshape", ["sum_f32", "minus_one"], "sum_flat"),
            node("Unsqueeze", ["sum_flat", "axes"], "y"),
        ], [ints("range", [0, 1, 2]), ints("column", [-1, 1]), ints("minus_one", [-1]), ints("axes", [0])], output: "y")
        let folded = try ConstantFolding().run(ShapeInference().run(graph).graph).graph
        let output = try XCTUnwrap(folded.outputs.first?.value)
        XCTAssertEqual(folded.valueTypes[output]?.shape, Shape([.known(1), .known(9)]))
        XCTAssertEqual(folded.constants[folded.nodes.first?.inputs.first ?? ""]?.data?.floats(), [0, 1, 2, 1, 2, 3, 2, 3, 4])
    }

    func testShapeUsedAsDataIsRefused() {
        let error = onnxError({ _ = try importGraph([node("Shape", ["x"], "y")], [], output: "y") })
        XCTAssertTrue(error?.description.contains("depends on a run-time size") ?? false, String(describing: error))
    }

    /// ConstantOfShape of a constant shape becomes a constant; fully known shape values
    /// used as data become int64 constants.
    func testConstantOfShapeAndKnownShapes() throws {
        let graph = try importGraph([
            node("ConstantOfShape", ["dims"], "filled", ["value": .tensor(TensorData(floats: [2.5], shape: [1]))]),
            node("Add", ["x", "filled"], "y"),
        ], [ints("dims", [4, 6])], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.add])
        let filled = try XCTUnwrap(graph.constants[graph.nodes[0].inputs[1]])
        XCTAssertEqual(filled.type, TensorType(.float32, [4, 6]))
        XCTAssertEqual(filled.data?.floats(), Array(repeating: 2.5, count: 24))
    }

    /// A fill of the batch's shape (EdgeNeXt's mask, [N,4,6] from Shape(x)) is one value at every
    /// index: a [1,4,6] literal expanded to the batch when the plan binds it. CumSum reads its axis
    /// from a constant input; one of floats is refused by name.
    func testConstantOfShapeWithTheBatchBecomesAnExpand() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("ConstantOfShape", ["shape"], "filled", ["value": .tensor(TensorData(floats: [2.5], shape: [1]))]),
            node("CumSum", ["filled", "two"], "summed", ["reverse": .int(1)]),
            node("Add", ["x", "summed"], "y"),
        ], [ints("two", [2], scalar: true)], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.expand, .cumulativeSum, .add], describe(graph))
        XCTAssertEqual(graph.nodes[0].attributes.ints("shape"), [1, 4, 6])
        XCTAssertEqual(graph.nodes[0].attributes.strings("symbols"), ["N", "", ""])
        let filled = try XCTUnwrap(graph.constants[graph.nodes[0].inputs[0]])
        XCTAssertEqual(filled.type, TensorType(.float32, [1, 4, 6]))
        XCTAssertEqual(filled.data?.floats(), Array(repeating: 2.5, count: 24))
        XCTAssertEqual(graph.nodes[1].attributes["axis"], .int(2))
        XCTAssertEqual(graph.nodes[1].attributes["exclusive"], .bool(false))
        XCTAssertEqual(graph.nodes[1].attributes["reverse"], .bool(true))

        let error = onnxError({
            _ = try importGraph([
                node("Shape", ["x"], "shape"),
                node("CumSum", ["x", "axis"], "y"),
            ], [floats("axis", [2])], output: "y")
        })
        XCTAssertTrue(error?.description.contains("CumSum node 'y': input 'axis' must hold integers") ?? false, String(describing: error))
    }

    /// OneHot of constants becomes a constant (indices [1, -1, 5] with depth 4 along the last
    /// axis: row 0 on at 1, row 1 at 3 (−1 counts from the end), row 2 outside, all off; written
    /// out by hand). GCViT's `q.repeat(B // q.shape[0], 1, 1, 1)` puts the batch in its values:
    /// the one-hot repeats vector [N, 1, 1] then drives a Tile, which becomes an expand.
    func testOneHotOfConstantsAndOfTheBatch() throws {
        let graph = try importGraph([
            node("OneHot", ["indices", "depth", "values"], "table"),
            node("Reshape", ["table", "flat"], "y"),
        ], [ints("indices", [1, -1, 5]), ints("depth", [4], scalar: true), floats("values", [0, 3]), ints("flat", [12])],
            output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.reshape], describe(graph))
        XCTAssertEqual(graph.constants[graph.nodes[0].inputs[0]]?.data?.floats(), [0, 3, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0])

        let tiled = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "zero"], "batch"),
            node("Unsqueeze", ["batch", "axes"], "batch_vec"),
            node("Concat", ["one", "batch_vec"], "values", ["axis": .int(0)]),
            node("OneHot", ["first", "three", "values"], "repeats"),
            node("Tile", ["table", "repeats"], "tiled"),
            node("Add", ["x", "tiled"], "y"),
        ], [ints("zero", [0], scalar: true), ints("axes", [0]), ints("one", [1]), ints("first", [0], scalar: true),
            ints("three", [3], scalar: true), floats("table", (0..<24).map(Float.init), shape: [1, 4, 6])], output: "y")
        XCTAssertEqual(tiled.nodes.map(\.op), [.expand, .add], describe(tiled))
        XCTAssertEqual(tiled.nodes[0].attributes.strings("symbols"), ["N", "", ""])
    }

    /// Constant nodes and integer Cast/Identity chains fold; a Constant's value is kept.
    func testConstantNodes() throws {
        let graph = try importGraph([
            node("Constant", [], "target_i32", ["value": .tensor(TensorData(dtype: .int32, shape: [2],
                                                                             storage: TensorStorage(copying: [Int32(0), -1])))]),
            node("Cast", ["target_i32"], "target", ["to": .int(7)]),
            node("Reshape", ["x", "target"], "flat"),
            node("Constant", [], "scale", ["value_float": .float(3)]),
            node("Mul", ["flat", "scale"], "y"),
        ], [], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.reshape, .mul])
        XCTAssertEqual(graph.nodes[0].attributes.ints("shape"), [0, -1])
        XCTAssertEqual(graph.constants["scale"]?.data?.floats(), [3])
        XCTAssertEqual(graph.constants["scale"]?.role, .literal)
    }

    private func floats(_ name: String, _ values: [Float], shape: [Int]? = nil) -> ONNXTensor {
        ONNXTensor(name: name, data: TensorData(floats: values, shape: shape ?? (values.count == 1 ? [] : [values.count])))
    }

    /// TensorFlow-style "SAME" padding computed in floats from the input's size (timm's tf_*
    /// models): width 6, kernel 3, stride 4 gives ⌈6/4⌉ = 2 outputs, (2 − 1)·4 + 3 − 6 = 1 padded
    /// column, ⌊1/2⌋ = 0 before and 1 after. Every step folds while importing; only the Pad stays.
    func testFloatShapeArithmeticFoldsIntoPads() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "two"], "width"),
            node("Cast", ["width"], "width_f", ["to": .int(1)]),
            node("Div", ["width_f", "stride"], "ratio"),
            node("Ceil", ["ratio"], "outputs"),
            node("Sub", ["outputs", "one_f"], "steps"),
            node("Mul", ["steps", "stride"], "span"),
            node("Add", ["span", "kernel"], "needed"),
            node("Sub", ["needed", "width_f"], "missing"),
            node("Clip", ["missing", "zero_f"], "total"),
            node("Div", ["total", "two_f"], "half"),
            node("Floor", ["half"], "before_f"),
            node("Sub", ["total", "before_f"], "after_f"),
            node("Cast", ["before_f"], "before", ["to": .int(7)]),
            node("Cast", ["after_f"], "after", ["to": .int(7)]),
            node("Unsqueeze", ["before", "axes"], "before_vec"),
            node("Unsqueeze", ["after", "axes"], "after_vec"),
            node("Concat", ["zeros", "before_vec", "zeros", "after_vec"], "pads", ["axis": .int(0)]),
            node("Pad", ["x", "pads"], "y"),
        ], [ints("two", [2], scalar: true), ints("axes", [0]), ints("zeros", [0, 0]), floats("stride", [4]), floats("one_f", [1]),
            floats("kernel", [3]), floats("zero_f", [0]), floats("two_f", [2])], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.pad], describe(graph))
        XCTAssertEqual(graph.nodes.first?.attributes.ints("pads"), [0, 0, 0, 0, 0, 1])
    }

    /// A computation on the file's weights alone is left to constant folding (which keeps a
    /// weight's role), even when small; a graph output computed from shapes stays a node.
    func testWeightsAndOutputsAreNotFoldedWhileImporting() throws {
        let weightGraph = try importGraph([
            node("Transpose", ["weight"], "weight_t", ["perm": .ints([1, 0])]),
            node("MatMul", ["x", "weight_t"], "y"),
        ], [floats("weight", (0..<12).map(Float.init), shape: [2, 6])], output: "y")
        XCTAssertTrue(weightGraph.nodes.contains { $0.op == .transpose }, describe(weightGraph))
        let outputGraph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "two"], "width"),
            node("Cast", ["width"], "width_f", ["to": .int(1)]),
            node("Ceil", ["width_f"], "y"),
        ], [ints("two", [2], scalar: true)], output: "y")
        XCTAssertEqual(outputGraph.nodes.map(\.op), [.ceil], describe(outputGraph))
        XCTAssertEqual(outputGraph.constants[outputGraph.nodes[0].inputs[0]]?.data?.floats(), [6])
    }

    /// BatchNormalization in training mode normalises by its input's own statistics. NF-Nets
    /// standardise their filters this way, on a constant: (w − mean_c)/sqrt(var_c + ε)·scale_c +
    /// bias_c per channel c, computed here directly. Read straight from the file the weight is
    /// evaluated while importing; computed (here ×1) the written-out normalisation is, by constant
    /// folding through the ops' references.
    func testTrainingModeBatchNormOnAWeightFolds() throws {
        let weight = (0..<24).map { Float(($0 * 7) % 11) - 3 }
        let (scale, bias, epsilon): ([Float], [Float], Float) = ([1, 2, 0.5, -1], [0, 0.25, -1, 3], 1e-3)
        for computed in [false, true] {
            let batchNormInput = computed ? "weight_times_one" : "weight"
            let imported = try importGraph([
                node("Mul", ["weight", "one"], "weight_times_one"),
                node("BatchNormalization", [batchNormInput, "scale", "bias", "mean", "variance"], "standardised",
                     ["training_mode": .int(1), "epsilon": .float(epsilon)]),
                node("Mul", ["x", "standardised"], "y"),
            ], [floats("weight", weight, shape: [1, 4, 6]), floats("one", [1]), floats("scale", scale), floats("bias", bias),
                floats("mean", [9, 9, 9, 9]), floats("variance", [9, 9, 9, 9])], output: "y")
            XCTAssertEqual(imported.nodes.contains { $0.op == .reduceMean }, computed, describe(imported))
            let folded = try ConstantFolding().run(imported).graph
            XCTAssertEqual(folded.nodes.filter { $0.inputs.contains("x") }.map(\.op), [.mul], describe(folded))
            let product = try XCTUnwrap(folded.nodes.first { $0.inputs.contains("x") })
            let values = try XCTUnwrap(folded.constants[product.inputs[1]]?.data?.floats())
            for channel in 0..<4 {
                let row = weight[(channel * 6)..<(channel * 6 + 6)].map(Double.init)
                let mean = row.reduce(0, +) / 6
                let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
                for (index, value) in row.enumerated() {
                    let expected = (value - mean) / (variance + Double(epsilon)).squareRoot() * Double(scale[channel]) + Double(bias[channel])
                    XCTAssertEqual(Double(values[channel * 6 + index]), expected, accuracy: 1e-5,
                                   "computed \(computed), channel \(channel), element \(index)")
                }
            }
        }
    }

    /// Training mode with the running statistics read as outputs is refused: Keel computes Y only.
    func testTrainingModeBatchNormStatisticsOutputsAreRefused() {
        let batchNorm = ONNXNode(name: "bn", opType: "BatchNormalization", domain: "", inputs: ["x", "scale", "bias", "mean", "variance"],
                                 outputs: ["y", "running_mean"], attributes: ["training_mode": .int(1)])
        let error = onnxError({
            _ = try importGraph([batchNorm], [floats("scale", [1, 1, 1, 1]), floats("bias", [0, 0, 0, 0]), floats("mean", [0, 0, 0, 0]),
                                              floats("variance", [1, 1, 1, 1])], outputs: ["y", "running_mean"])
        })
        XCTAssertTrue(error?.description.contains("Keel computes only the first output") ?? false, String(describing: error))
    }

    /// Tile by the batch (XCiT's positional encoding, `pos.repeat(B, 1, 1, 1)`) along an axis of
    /// extent 1 is a broadcast: an expand to [N, 4, 6]. Repeating a longer axis by the batch has no
    /// fixed layout and is refused by name.
    func testTileByTheBatchBecomesAnExpand() throws {
        let graph = try importGraph([
            node("Shape", ["x"], "shape"),
            node("Gather", ["shape", "zero"], "batch"),
            node("Unsqueeze", ["batch", "axes"], "batch_vec"),
            node("Concat", ["batch_vec", "ones"], "repeats", ["axis": .int(0)]),
            node("Tile", ["table", "repeats"], "tiled"),
            node("Add", ["x", "tiled"], "y"),
        ], [ints("zero", [0], scalar: true), ints("axes", [0]), ints("ones", [1, 1]),
            floats("table", (0..<24).map(Float.init), shape: [1, 4, 6])], output: "y")
        XCTAssertEqual(graph.nodes.map(\.op), [.expand, .add], describe(graph))
        XCTAssertEqual(graph.nodes[0].attributes.ints("shape"), [1, 1, 1])
        XCTAssertEqual(graph.nodes[0].attributes.strings("symbols"), ["N", "", ""])
        let error = onnxError({
            _ = try importGraph([
                node("Shape", ["x"], "shape"),
                node("Gather", ["shape", "zero"], "batch"),
                node("Unsqueeze", ["batch", "axes"], "batch_vec"),
                node("Concat", ["ones", "batch_vec"], "repeats", ["axis": .int(0)]),
                node("Tile", ["x", "repeats"], "y"),
            ], [ints("zero", [0], scalar: true), ints("axes", [0]), ints("ones", [1, 1])], output: "y")
        })
        XCTAssertTrue(error?.description.contains("repeats an axis of extent 6 a run-time number of times") ?? false,
                      String(describing: error))
    }
}
