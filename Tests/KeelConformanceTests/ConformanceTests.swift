import Foundation
import Keel
import KeelONNX
import XCTest

/// Runs the ONNX backend node tests (`shared/onnx-conformance`, see its README) through ONNX
/// import, shape inference and the CPU runtime, and prints passed/failed/skipped per op.
///
/// A case is skipped, with its reason, when its op is one Keel does not claim or when an output
/// is not float32 (the runtime computes float32 only) and its op has no compile-time evaluation;
/// bool and integer outputs of ops that fold at compile time (Equal, Where) are checked exactly. Every other case must pass when ONNX
/// Runtime passes it too (the manifest's `ort_passes`), at the README's tolerances
/// (rtol 1e-3, atol 1e-5), with the exact shape.
final class ConformanceTests: XCTestCase {
    struct Case {
        var name: String
        var op: String
        var outputDtypes: [String]
        var ortPasses: Bool
    }

    enum Outcome: Equatable {
        case passed
        case failed(String)
        case skipped(String)
    }

    func testONNXNodeConformance() throws {
        guard let root = Self.conformanceRoot() else {
            throw XCTSkip("shared/onnx-conformance not found above \(#filePath)")
        }
        let cases = try Self.readManifest(root + "/manifest.tsv")
        XCTAssertGreaterThan(cases.count, 300)
        var byOp: [String: (passed: Int, failed: Int, skipped: Int)] = [:]
        var mustPassFailures: [String] = []
        var skipReasons: [String: Int] = [:]
        for testCase in cases {
            let outcome = run(testCase, in: root + "/node/" + testCase.name)
            var counts = byOp[testCase.op, default: (0, 0, 0)]
            switch outcome {
            case .passed:
                counts.passed += 1
            case .failed(let reason):
                counts.failed += 1
                if testCase.ortPasses { mustPassFailures.append("\(testCase.name): \(reason)") }
            case .skipped(let reason):
                counts.skipped += 1
                skipReasons[reason, default: 0] += 1
            }
            byOp[testCase.op] = counts
        }
        var report = ["conformance per op (passed/failed/skipped):"]
        for op in byOp.keys.sorted() {
            let counts = byOp[op]!
            report.append("conformance   \(op.padding(toLength: 22, withPad: " ", startingAt: 0)) \(counts.passed)/\(counts.failed)/\(counts.skipped)")
        }
        let passed = byOp.values.reduce(0) { $0 + $1.passed }
        let failed = byOp.values.reduce(0) { $0 + $1.failed }
        let skipped = byOp.values.reduce(0) { $0 + $1.skipped }
        for (reason, count) in skipReasons.sorted(by: { $0.value > $1.value }) {
            report.append("conformance   skipped \(count): \(reason)")
        }
        let claimed = passed + failed
        report.append(String(format: "conformance: %d of %d cases pass (%.1f%% of the %d cases for claimed ops); %d fail, %d skipped",
                             passed, cases.count, 100 * Double(passed) / Double(max(claimed, 1)), claimed, failed, skipped))
        print(report.joined(separator: "\n"))
        for failure in mustPassFailures { print("conformance FAIL \(failure)") }
        XCTAssertTrue(mustPassFailures.isEmpty, "\(mustPassFailures.count) cases that ONNX Runtime passes failed")
    }

    private func run(_ testCase: Case, in folder: String) -> Outcome {
        guard supportedONNXOps.contains(testCase.op) else { return .skipped("op \(testCase.op) is not supported") }
        guard testCase.outputDtypes.allSatisfy({ $0 == "FLOAT" }) else {
            let outcome = evaluateAtCompileTime(testCase, in: folder)
            // Ops without compile-time semantics (a Dropout mask, MaxPool indices) are not claimed.
            if case .failed = outcome, OpRegistry.schema(onnxOpType: testCase.op)?.reference == nil {
                return .skipped("non-float32 output (the runtime computes float32 only)")
            }
            return outcome
        }
        do {
            let model = try loadONNXModel(path: folder + "/model.onnx")
            let dataFolder = folder + "/test_data_set_0"
            var feeds: [String: Tensor] = [:]
            var constants: [String: TensorData] = [:]
            let initializerNames = Set(model.graph.initializers.map(\.name))
            let graphInputs = model.graph.inputs.filter { !initializerNames.contains($0.name) }
            let parameterInputs = Self.parameterInputs(of: model)
            for (index, input) in graphInputs.enumerated() {
                let data = try loadTensorProto(path: "\(dataFolder)/input_\(index).pb")
                if data.dtype == .float32 && !parameterInputs.contains(input.name) {
                    feeds[input.name] = try Tensor(shape: data.shape, values: data.floats())
                } else {
                    // Integer inputs (shapes, axes, indices) and parameters are known when the model
                    // is compiled: specialise them into constants, as an ahead-of-time compiler does.
                    constants[input.name] = data
                }
            }
            let graph = try ModelLoader.infer(importONNXGraph(model, constantInputs: constants))
            let compiled = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
            let results = try compiled.run(feeds)
            for (index, output) in model.graph.outputs.enumerated() where !output.name.isEmpty {
                let expected = try loadTensorProto(path: "\(dataFolder)/output_\(index).pb")
                guard let actual = results[output.name] else { return .failed("no output '\(output.name)'") }
                guard actual.shape == expected.shape else {
                    return .failed("output '\(output.name)' has shape \(actual.shape), expected \(expected.shape)")
                }
                for (got, want) in zip(actual.values, expected.floats()) {
                    if got.isNaN && want.isNaN { continue }
                    if !(abs(got - want) <= 1e-5 + 1e-3 * abs(want)) {
                        return .failed("output '\(output.name)': got \(got), expected \(want)")
                    }
                }
            }
            // Ops that only move data are folded through their reference semantics when their
            // inputs are constants (Swin's attention masks): those must give the same bits. (A
            // translation that also computes, Gemm's transpose then matmul, rounds differently in
            // Double and is checked by value above.)
            let schemas = graph.nodes.map { OpRegistry.schema(for: $0.op) }
            if !schemas.isEmpty, schemas.allSatisfy({ $0.category == .dataMovement && $0.reference != nil }),
               case .failed(let reason) = evaluateAtCompileTime(testCase, in: folder) {
                return .failed("reference semantics: \(reason)")
            }
            return .passed
        } catch {
            return .failed(String(describing: error).split(separator: "\n").first.map(String.init) ?? "error")
        }
    }

    /// A case with bool or integer outputs (Equal, Where on int64): the runtime computes float32
    /// only, but these ops fold at compile time, as they do in exporters' shape arithmetic. With
    /// every input a constant, each node is evaluated by its schema's reference semantics (the
    /// evaluator constant folding and ONNX import share) and the outputs compared exactly.
    private func evaluateAtCompileTime(_ testCase: Case, in folder: String) -> Outcome {
        let skip = Outcome.skipped("non-float32 output (the runtime computes float32 only)")
        do {
            let model = try loadONNXModel(path: folder + "/model.onnx")
            let dataFolder = folder + "/test_data_set_0"
            var constants: [String: TensorData] = [:]
            for (index, input) in model.graph.inputs.enumerated() {
                constants[input.name] = try loadTensorProto(path: "\(dataFolder)/input_\(index).pb")
            }
            let graph = try ModelLoader.infer(importONNXGraph(model, constantInputs: constants))
            var values = graph.constants.compactMapValues(\.data)
            for node in graph.nodes {
                guard OpRegistry.schema(for: node.op).reference != nil else { return skip }
                guard node.outputs.count == 1, let type = graph.valueTypes[node.outputs[0]], let shape = type.shape.knownExtents,
                      let result = evaluateReference(node, inputs: node.inputs.map { values[$0].map(ReferenceTensor.init) }, outputShape: shape)
                else { return .failed("'\(node.name)' did not evaluate") }
                values[node.outputs[0]] = TensorData(referenceValues: result, dtype: type.dtype, shape: shape)
            }
            for (index, output) in model.graph.outputs.enumerated() {
                let expected = try loadTensorProto(path: "\(dataFolder)/output_\(index).pb")
                guard let value = graph.outputs.first(where: { $0.name == output.name }).flatMap({ values[$0.value] }) else {
                    return .failed("no output '\(output.name)'")
                }
                guard value.dtype == expected.dtype, value.shape == expected.shape else {
                    return .failed("output '\(output.name)' is \(value.dtype.rawValue)\(value.shape), expected \(expected.dtype.rawValue)\(expected.shape)")
                }
                guard value.storage.bytes.elementsEqual(expected.storage.bytes) else { return .failed("output '\(output.name)' differs") }
            }
            return .passed
        } catch {
            return .failed(String(describing: error).split(separator: "\n").first.map(String.init) ?? "error")
        }
    }

    /// Operands Keel compiles in as constants (filters, BN statistics, clip bounds, pad values,
    /// dropout ratios, resize scales, Range's operands) that these single-node cases feed as graph
    /// inputs instead.
    static func parameterInputs(of model: ONNXModel) -> Set<String> {
        let parameterOps: Set<String> = ["Conv", "ConvTranspose", "BatchNormalization", "Clip", "Pad", "Dropout", "LayerNormalization",
                                          "InstanceNormalization", "Resize"]
        // Range's operands set its output's length, which Keel's plans fix before they run.
        let shapeSettingOps: Set<String> = ["Range"]
        var names = Set<String>()
        for node in model.graph.nodes where parameterOps.contains(node.opType) {
            names.formUnion(node.inputs.dropFirst().filter { !$0.isEmpty })
        }
        for node in model.graph.nodes where shapeSettingOps.contains(node.opType) {
            names.formUnion(node.inputs.filter { !$0.isEmpty })
        }
        return names
    }

    static func conformanceRoot() -> String? {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = directory.appendingPathComponent("shared/onnx-conformance").path
            if FileManager.default.fileExists(atPath: candidate + "/manifest.tsv") { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }

    static func readManifest(_ path: String) throws -> [Case] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let header = lines.removeFirst()
        func column(_ name: String) throws -> Int {
            guard let index = header.firstIndex(of: name) else { throw XCTSkip("manifest has no \(name) column") }
            return index
        }
        let (name, op, dtypes, ort) = (try column("test_name"), try column("op"), try column("output_dtypes"), try column("ort_passes"))
        return lines.filter { $0.count == header.count }.map {
            Case(name: $0[name], op: $0[op], outputDtypes: $0[dtypes].split(separator: ";").map(String.init), ortPasses: $0[ort] == "yes")
        }
    }
}
