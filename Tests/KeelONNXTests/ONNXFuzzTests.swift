import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// Damaged files either load or throw ONNXError: truncations at random lengths and random bit
/// flips of the fixtures, from a fixed seed so a failure replays.
final class ONNXFuzzTests: XCTestCase {
    func testTruncatedAndBitFlippedModelsNeverCrash() throws {
        var generator = SeededGenerator(seed: 0x6B65_656C)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keel-onnx-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("variant.onnx").path
        var loaded = 0, rejected = 0, variants = 0
        for fixture in ["cnn.onnx", "tf2onnx_style.onnx"] {
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture))))
            for round in 0..<600 {
                var bytes = original
                if round % 2 == 0 {
                    bytes.removeLast(Int.random(in: 1..<bytes.count, using: &generator))
                } else {
                    for _ in 0..<Int.random(in: 1...6, using: &generator) {
                        let index = Int.random(in: 0..<bytes.count, using: &generator)
                        bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
                    }
                }
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                variants += 1
                do {
                    _ = try importONNXGraph(try loadONNXModel(path: path))
                    loaded += 1
                } catch is ONNXError {
                    rejected += 1
                } catch {
                    XCTFail("\(fixture) variant \(round) threw a non-ONNX error: \(error)")
                }
            }
        }
        XCTAssertEqual(variants, 1200)
        XCTAssertEqual(loaded + rejected, variants)
        XCTAssertGreaterThan(rejected, 0)
    }
}

/// Well-formed protobuf, nonsense ONNX: every supported op with too few or too many inputs,
/// attributes of the wrong type or absurd values. Each import either works or throws ONNXError.
final class ONNXStructuralFuzzTests: XCTestCase {
    func testEverySupportedOpSurvivesOddInputsAndAttributes() throws {
        let weights = ONNXTensor(name: "w", data: TensorData(floats: Array(repeating: 0.5, count: 16), shape: [2, 2, 2, 2]))
        let vector = ONNXTensor(name: "v", data: TensorData(int64s: [0, -1, Int64.max, Int64.min], shape: [4]))
        let scalar = ONNXTensor(name: "s", data: TensorData(int64s: [Int64.min], shape: []))
        let attributeSets: [[String: ONNXAttribute]] = [
            [:],
            ["axis": .int(Int.max), "axes": .ints([Int.min, Int.max]), "perm": .ints([5, -7]), "to": .int(99)],
            ["kernel_shape": .ints([0, 0]), "strides": .ints([0, -1]), "pads": .ints([-5, Int.max, 1]),
             "auto_pad": .string("SAME_LOWER"), "group": .int(0), "dilations": .ints([])],
            ["axis": .string("one"), "alpha": .strings(["x"]), "epsilon": .tensor(vector.data), "shape": .floats([1.5])],
            ["starts": .ints([Int.min]), "ends": .ints([Int.max]), "value": .tensor(scalar.data), "start": .int(Int.min),
             "end": .int(Int.max), "approximate": .string("cubic"), "mode": .string("reflect"), "transB": .int(1),
             "alpha": .float(.nan), "beta": .float(.infinity), "allowzero": .int(1)],
        ]
        let inputLists: [[String]] = [[], [""], ["x"], ["x", "w"], ["x", "v"], ["x", "s", "v", "w", "x"],
                                      ["v", "v"], ["s"], ["w", "w", "w", "w", "w"], ["x", "", "v"]]
        var outcomes = (imported: 0, refused: 0)
        for op in supportedONNXOps.sorted() {
            for attributes in attributeSets {
                for inputs in inputLists {
                    for (opset, dims) in [(9, [ONNXDim.param("N"), .value(2), .value(3), .value(3)]), (18, [.unknown, .value(2)])] {
                        let node = ONNXNode(name: "", opType: op, domain: "", inputs: inputs, outputs: ["y", "y2"],
                                            attributes: attributes)
                        let graph = ONNXGraph(name: "fuzz", nodes: [node], initializers: [weights, vector, scalar],
                                              inputs: [ONNXValueInfo(name: "x", elementType: 1, dims: dims)],
                                              outputs: [ONNXValueInfo(name: "y", elementType: 1, dims: nil)], valueInfo: [])
                        let model = ONNXModel(path: "fuzz.onnx", irVersion: 8, producerName: "", producerVersion: "",
                                              opsetImports: ["": opset], graph: graph)
                        do {
                            _ = try importONNXGraph(model)
                            outcomes.imported += 1
                        } catch is ONNXError {
                            outcomes.refused += 1
                        } catch {
                            XCTFail("\(op) \(inputs) \(attributes): \(error)")
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(outcomes.refused, 0)
        XCTAssertGreaterThan(outcomes.imported, 0)
    }
}
