import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// The loader against what tools/gen_onnx_fixtures.py wrote (expected.json).
final class ONNXLoaderTests: XCTestCase {
    func testFixturesMatchWhatTheGeneratorWrote() throws {
        for name in ["cnn", "external", "tf2onnx_style", "tf2onnx_style_opset11", "typed_fields", "ops_opset9",
                     "ops_opset18", "vit_head_style"] {
            let model = try loadONNXModel(path: Fixtures.path(name + ".onnx"))
            let expected = try Fixtures.expected(name)
            XCTAssertEqual(model.irVersion, expected["ir_version"] as? Int, name)
            XCTAssertEqual(model.opsetImports, expected["opset"] as? [String: Int], name)
            let nodes = try XCTUnwrap(expected["nodes"] as? [[String: Any]])
            XCTAssertEqual(model.graph.nodes.count, nodes.count, name)
            for (node, facts) in zip(model.graph.nodes, nodes) {
                XCTAssertEqual(node.name, facts["name"] as? String)
                XCTAssertEqual(node.opType, facts["op"] as? String)
                XCTAssertEqual(node.inputs, facts["inputs"] as? [String])
                XCTAssertEqual(node.outputs, facts["outputs"] as? [String])
                let attributes = try XCTUnwrap(facts["attributes"] as? [String: Any])
                XCTAssertEqual(Set(node.attributes.keys), Set(attributes.keys), node.name)
                for (key, value) in attributes {
                    switch (node.attributes[key], value) {
                    case (.int(let int)?, let number as Int): XCTAssertEqual(int, number, "\(node.name).\(key)")
                    case (.ints(let ints)?, let numbers as [Int]): XCTAssertEqual(ints, numbers, "\(node.name).\(key)")
                    case (.string(let text)?, let string as String): XCTAssertEqual(text, string, "\(node.name).\(key)")
                    case (.float(let float)?, let number as Double): XCTAssertEqual(Double(float), number, accuracy: 1e-6)
                    default: XCTFail("\(name): attribute \(node.name).\(key) is \(String(describing: node.attributes[key]))")
                    }
                }
            }
            let initializers = try XCTUnwrap(expected["initializers"] as? [String: [String: Any]])
            XCTAssertEqual(Set(model.graph.initializers.map(\.name)), Set(initializers.keys), name)
            for tensor in model.graph.initializers {
                let facts = try XCTUnwrap(initializers[tensor.name])
                XCTAssertEqual(tensor.data.shape, facts["dims"] as? [Int], tensor.name)
                XCTAssertEqual(onnxDataTypeName(dtypeCode(tensor.data.dtype)), facts["dtype"] as? String, tensor.name)
                let values = tensor.data.dtype == .int64 ? tensor.data.int64s().map(Double.init) : tensor.data.floats().map(Double.init)
                XCTAssertEqual(values.count, facts["count"] as? Int, tensor.name)
                let first = try XCTUnwrap(facts["first"] as? [Double])
                for (actual, wanted) in zip(values, first) {
                    XCTAssertEqual(actual, wanted, accuracy: abs(wanted) * 1e-6 + 1e-9, tensor.name)
                }
                let sum = try XCTUnwrap(facts["sum"] as? Double)
                XCTAssertEqual(values.reduce(0, +), sum, accuracy: abs(sum) * 1e-5 + 1e-5, tensor.name)
            }
            let inputs = try XCTUnwrap(expected["inputs"] as? [[String: Any]])
            XCTAssertEqual(model.graph.inputs.map(\.name), inputs.map { $0["name"] as? String ?? "" }, name)
        }
    }

    func testReadsDimParamsAndValues() throws {
        let model = try loadONNXModel(path: Fixtures.path("tf2onnx_style.onnx"))
        XCTAssertEqual(model.graph.inputs.first?.dims, [.param("unk__42"), .value(8), .value(8), .value(3)])
        XCTAssertEqual(model.graph.inputs.first?.dtype, .float32)
        XCTAssertEqual(model.producerName, "tf2onnx")
    }

    /// Values written by hand in the generator, one per typed field (no raw_data).
    func testTypedFields() throws {
        let model = try loadONNXModel(path: Fixtures.path("typed_fields.onnx"))
        let tensors = Dictionary(uniqueKeysWithValues: model.graph.initializers.map { ($0.name, $0.data) })
        XCTAssertEqual(tensors["f32"]?.floats(), [1.5, -2.0, 0.25, 8.0])
        XCTAssertEqual(tensors["f32"]?.shape, [2, 2])
        XCTAssertEqual(tensors["f64"]?.dtype, .float64)
        XCTAssertEqual(tensors["f64"]?.floats(), [1.0, -0.5, 1e10])
        XCTAssertEqual(tensors["i32"]?.int64s(), [7, -9])
        XCTAssertEqual(tensors["i64"]?.int64s(), [1 << 40, -3])
        XCTAssertEqual(tensors["b"]?.dtype, .bool)
        XCTAssertEqual(tensors["b"]?.int64s(), [1, 0, 1])
        XCTAssertEqual(tensors["f16"]?.dtype, .float16)
        XCTAssertEqual(tensors["f16"]?.floats(), [0.5, -3.0])
    }

    #if os(Linux)
    /// External weights are views into a mapping of external.bin, not copies.
    func testExternalDataIsMemoryMapped() throws {
        let model = try loadONNXModel(path: Fixtures.path("external.onnx"))
        let kernel = try XCTUnwrap(model.graph.initializers.first { $0.name == "dense/kernel" }?.data)
        let address = UInt(bitPattern: kernel.storage.bytes.baseAddress)
        // procfs files report size 0, so read them as a stream.
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps"))
        let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let mapped = maps.split(separator: "\n").contains { line in
            guard line.hasSuffix("/external.bin") else { return false }
            let range = line.split(separator: " ")[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
            return range.count == 2 && range[0] <= address && address < range[1]
        }
        XCTAssertTrue(mapped, "dense/kernel should point into a mapping of external.bin")
    }
    #endif

    /// External data at an odd offset is copied to aligned memory (values written by hand).
    func testUnalignedExternalDataIsCopied() throws {
        let model = try loadONNXModel(path: Fixtures.path("unaligned_external.onnx"))
        let data = try XCTUnwrap(model.graph.initializers.first?.data)
        XCTAssertEqual(data.floats(), [1, 2, 3, 4])
        XCTAssertEqual(Int(bitPattern: data.storage.bytes.baseAddress) % 4, 0)
        let output = try loadTensorProto(path: Fixtures.path("unaligned_external_output_0.pb"))
        XCTAssertEqual(output.floats(), [2, 3, 4, 5])
    }

    /// The generator's input and ONNX Runtime's output for cnn.onnx, as TensorProto files.
    func testLoadsTensorProtoFiles() throws {
        let input = try loadTensorProto(path: Fixtures.path("cnn_input_0.pb"))
        XCTAssertEqual(input.dtype, .float32)
        XCTAssertEqual(input.shape, [2, 3, 8, 8])
        let output = try loadTensorProto(path: Fixtures.path("cnn_output_0.pb"))
        let expected = try Fixtures.expected("cnn")
        XCTAssertEqual(output.shape, expected["output_shape"] as? [Int])
        let sample = try XCTUnwrap(expected["output_sample"] as? [Double])
        for (actual, wanted) in zip(output.floats(), sample) { XCTAssertEqual(Double(actual), wanted, accuracy: 1e-6) }
    }

    /// Weights outlive the model value that loaded them (the parsed tree stays alive).
    func testTensorsOutliveTheModel() throws {
        var data: TensorData?
        do {
            let model = try loadONNXModel(path: Fixtures.path("cnn.onnx"))
            data = model.graph.initializers.first { $0.name == "fc.bias" }?.data
        }
        let expected = try Fixtures.expected("cnn")
        let facts = try XCTUnwrap((expected["initializers"] as? [String: [String: Any]])?["fc.bias"])
        let first = try XCTUnwrap(facts["first"] as? [Double])
        XCTAssertEqual(try XCTUnwrap(data).floats().map(Double.init)[0], first[0], accuracy: 1e-7)
    }

    private func dtypeCode(_ dtype: DType) -> Int {
        switch dtype {
        case .float32: return 1
        case .int32: return 6
        case .int64: return 7
        case .bool: return 9
        case .float16: return 10
        case .float64: return 11
        }
    }
}
