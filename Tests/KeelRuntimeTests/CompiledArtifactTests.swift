import Foundation
import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

final class CompiledArtifactTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-artifact-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    private func seededGraph() throws -> Graph {
        let source = """
        model small
        input image: f32[N, 12, 12, 3] nhwc
        conv = conv2d(5, 3, padding: same, activation: relu)
        bn = batch_norm()
        pool = max_pool2d(2)
        flat = flatten()
        logits = dense(4, activation: softmax)
        output logits labels: "labels.txt"
        """
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: folder + "/small.keel")).graph
        for (name, constant) in graph.constants {
            graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 3)
        }
        return graph
    }

    func testRoundTripMapsWeightsAndRunsTheSame() throws {
        let graph = try seededGraph()
        let path = folder + "/small.keelc"
        try CompiledArtifact.write(graph, provenance: .test, to: path)
        XCTAssertTrue(CompiledArtifact.isArtifact(path: path))
        let loaded = try CompiledArtifact.read(path: path).graph
        XCTAssertEqual(printIR(loaded), printIR(graph))
        XCTAssertEqual(loaded.outputs.first?.labels, graph.outputs.first?.labels)
        for (name, constant) in graph.constants {
            XCTAssertEqual(loaded.constants[name]?.data?.floats(), constant.data?.floats(), name)
            XCTAssertEqual(loaded.constants[name]?.trainable, constant.trainable, name)
        }
        var generator = SplitMix64(seed: 11)
        let input = try Tensor(shape: [2, 12, 12, 3], values: (0..<(2 * 12 * 12 * 3)).map { _ in Float(generator.nextUnit()) })
        let original = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1)).run(["image": input])
        let mapped = try CompiledModel(graph: loaded, context: ExecutionContext(threads: 1)).run(["image": input])
        XCTAssertEqual(original, mapped)
    }

    func testDamagedFilesAreRefusedWithTheReason() throws {
        let path = folder + "/small.keelc"
        try CompiledArtifact.write(try seededGraph(), provenance: .test, to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func refused(_ bytes: Data, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let damaged = folder + "/damaged.keelc"
            try bytes.write(to: URL(fileURLWithPath: damaged))
            XCTAssertThrowsError(try CompiledArtifact.read(path: damaged), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)", file: file, line: line)
            }
        }
        try refused(good.prefix(good.count - 10), "the file is truncated")
        try refused(good.prefix(40), "does not start with the .keelc signature")
        try refused(Data("not a model".utf8), "does not start with the .keelc signature")
        var version = good
        version[8] = 9
        try refused(version, "format version 9, but this keel reads versions 4, 5, 6, 7 and 8; compile it again with `keel compile`")
        version[8] = 3
        try refused(version, "format version 3 (an older keel's, which does not record how the file was made), but this keel reads versions 4, 5, 6, 7 and 8")
        var header = good
        header[70] ^= 0x20
        try refused(header, "the header fails its checksum")
        XCTAssertThrowsError(try CompiledArtifact.read(path: folder + "/missing.keelc")) { error in
            XCTAssertTrue("\(error)".contains("missing.keelc: No such file"), "\(error)")
        }
    }

    func testUnboundWeightsCannotBeWritten() throws {
        var graph = try seededGraph()
        graph.constants["conv/kernel"]?.data = nil
        XCTAssertThrowsError(try CompiledArtifact.write(graph, provenance: .test, to: folder + "/x.keelc")) { error in
            XCTAssertTrue("\(error)".contains("constant 'conv/kernel' has no value"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }
}

extension ArtifactProvenance {
    /// What the tests' hand-made graphs record: nothing seeded, no passes.
    static let test = ArtifactProvenance(source: "test.keel", weights: nil, match: nil, seed: nil, seededParameters: 0,
                                         optimization: "-O0", passes: nil, precision: "fp32", cutPoints: [:])
}
