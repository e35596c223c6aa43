import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// The ONNX backend node-test data in `shared/onnx-conformance` (beside the repository).
final class ONNXConformanceTests: XCTestCase {
    private struct Case {
        var name: String
        var opType: String
        var tensors: [(file: String, dtype: String, shape: String)]
    }

    private func cases() throws -> (URL, [Case]) {
        guard let folder = Fixtures.conformanceFolder else {
            throw XCTSkip("no shared/onnx-conformance folder above \(#filePath); conformance data not checked")
        }
        let text = try String(contentsOf: folder.appendingPathComponent("manifest.tsv"), encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let header = lines.removeFirst()
        func column(_ name: String) throws -> Int { try XCTUnwrap(header.firstIndex(of: name), "manifest column \(name)") }
        let (nameColumn, opColumn) = (try column("test_name"), try column("op"))
        var result: [Case] = []
        for row in lines {
            var tensors: [(String, String, String)] = []
            for kind in ["input", "output"] {
                let dtypes = row[try column("\(kind)_dtypes")], shapes = row[try column("\(kind)_shapes")]
                guard !dtypes.isEmpty else { continue }
                for (index, (dtype, shape)) in zip(dtypes.split(separator: ";"), shapes.split(separator: ";")).enumerated() {
                    tensors.append(("\(kind)_\(index).pb", String(dtype), String(shape)))
                }
            }
            result.append(Case(name: row[nameColumn], opType: row[opColumn], tensors: tensors))
        }
        return (folder, result)
    }

    /// Every input and expected output loads with the manifest's element type and shape.
    func testEveryTensorLoadsWithManifestTypeAndShape() throws {
        let (folder, cases) = try cases()
        XCTAssertEqual(cases.count, 353)
        var checked = 0
        for testCase in cases {
            let data = folder.appendingPathComponent("node/\(testCase.name)/test_data_set_0")
            for tensor in testCase.tensors {
                let path = data.appendingPathComponent(tensor.file).path
                do {
                    let loaded = try loadTensorProto(path: path)
                    XCTAssertEqual(loaded.dtype, manifestDType(tensor.dtype), "\(testCase.name)/\(tensor.file)")
                    XCTAssertEqual("[" + loaded.shape.map(String.init).joined(separator: ",") + "]", tensor.shape,
                                   "\(testCase.name)/\(tensor.file)")
                    XCTAssertEqual(loaded.storage.bytes.count, loaded.elementCount * loaded.dtype.byteSize)
                    checked += 1
                } catch {
                    XCTFail("\(testCase.name)/\(tensor.file): \(error)")
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000)
    }

    /// Every case's model either imports or is refused with an ONNXError. The cases feed
    /// weights, axes and shapes as graph inputs, so all inputs after the first are bound as
    /// constants from their .pb files, as a conformance runner would.
    func testEveryModelImportsOrFailsClearly() throws {
        let (folder, cases) = try cases()
        var imported = 0
        var refused: [String] = []
        for testCase in cases {
            let caseFolder = folder.appendingPathComponent("node/\(testCase.name)")
            let path = caseFolder.appendingPathComponent("model.onnx").path
            do {
                let model = try loadONNXModel(path: path)
                var constants: [String: TensorData] = [:]
                for (index, input) in model.graph.inputs.enumerated() where index > 0 {
                    constants[input.name] = try loadTensorProto(path: caseFolder.appendingPathComponent("test_data_set_0/input_\(index).pb").path)
                }
                let graph = try importONNXGraph(model, constantInputs: constants)
                XCTAssertEqual(graph.outputs.count, model.graph.outputs.count, testCase.name)
                XCTAssertEqual(graph.inputs.count, min(model.graph.inputs.count, 1), testCase.name)
                imported += 1
            } catch let error as ONNXError {
                if supportedONNXOps.contains(testCase.opType) {
                    refused.append(testCase.name)
                    // Refusals of translated ops are deliberate: forms the IR cannot express.
                    let deliberate = ["Keel computes only the first output", "shape input depends on a run-time size",
                                      "must be known when the model is compiled"]
                    XCTAssertTrue(deliberate.contains { error.description.contains($0) }, "\(testCase.name): \(error)")
                } else {
                    switch error {
                    case .unsupportedOp(_, _, let op, _): XCTAssertEqual(op, testCase.opType)
                    case .opsetTooNew: break
                    default: XCTFail("\(testCase.name): \(error)")
                    }
                }
            } catch {
                XCTFail("\(testCase.name): \(error)")
            }
        }
        XCTAssertGreaterThanOrEqual(imported, 339, "refused: \(refused)")
    }

    private func manifestDType(_ name: String) -> DType? {
        switch name {
        case "FLOAT": return .float32
        case "INT64": return .int64
        case "INT32": return .int32
        case "BOOL": return .bool
        case "DOUBLE": return .float64
        case "FLOAT16": return .float16
        default: return nil
        }
    }
}
