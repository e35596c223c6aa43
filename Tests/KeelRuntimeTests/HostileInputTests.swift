import Foundation
import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// Files and graphs made to break the runtime (issue 16): sizes that overflow, activations no
/// machine holds, and graphs long enough to expose super-linear planning.
final class HostileInputTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("keel-runtime-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    private func graph(_ text: String) throws -> Graph {
        let path = folder.appendingPathComponent("model.keel").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try ShapeInference().run(try loadKeelGraph(path: path)).graph
    }

    private func compile(_ graph: Graph, budget: MemoryBudget = .available) throws -> CompiledModel {
        var bound = graph
        for (name, constant) in graph.constants where constant.data == nil {
            bound.constants[name]?.data = WeightInitializer.initialize(constant, seed: 1)
        }
        return try CompiledModel(graph: bound, context: ExecutionContext(threads: 1, memoryBudget: budget))
    }

    /// F4: shape (2^62, 2^62, 0) has zero elements, but its partial products overflow (a trap).
    func testF4NpyShapeWhosePartialProductOverflowsIsRefused() throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904, 0), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        let path = folder.appendingPathComponent("overflow.npy").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try NpyFile.read(path: path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("shape (4611686018427387904, 4611686018427387904, 0) is too large"), "\(error)")
        }
    }

    /// F4: a .keelc constant of [2^32, 2^32] (checksum recomputed) trapped computing its bytes.
    func testF4CompiledConstantWithOverflowingShapeIsRefused() throws {
        let model = try compile(try graph("model m\ninput x: f32[N, 8]\nd = dense(4)\n"))
        let path = folder.appendingPathComponent("m.keelc").path
        // The dense kernel lives only in its prepared panels, which the file stores as `keel compile -o` does.
        try CompiledArtifact.write(model.graph, prepared: model.preparedFilters(), provenance: .test, to: path)
        // Rewrite the bias's shape in the header and recompute the header checksum, as an attacker would.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let load = { (offset: Int) in (0..<8).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) } }
        let length = load(16)
        var header = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes[64..<(64 + length)])) as? [String: Any])
        var constants = try XCTUnwrap(header["constants"] as? [[String: Any]])
        let bias = try XCTUnwrap(constants.firstIndex { ($0["name"] as? String) == "d/bias" })
        var type = try XCTUnwrap(constants[bias]["type"] as? [String: Any])
        type["shape"] = [["known": 4_294_967_296], ["known": 4_294_967_296]]
        constants[bias]["type"] = type
        header["constants"] = constants
        let rewritten = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        XCTAssertLessThanOrEqual(64 + rewritten.count, load(32), "the header must still end before the weights")
        bytes.replaceSubrange(64..<(64 + length), with: rewritten + [UInt8](repeating: 0, count: max(0, length - rewritten.count)))
        func store(_ value: UInt64, at offset: Int) { for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) } }
        store(UInt64(rewritten.count), at: 16)
        store(stableHash(rewritten), at: 24)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try CompiledArtifact.read(path: path)) { error in
            XCTAssertTrue("\(error)".hasSuffix("constant 'd/bias' has shape [4294967296,4294967296], too large to address"), "\(error)")
        }
    }

    /// F4: a 2.6 TB activation aborted in the allocator; a padding of 2^31 wrapped into a trap.
    /// Both are now refused before allocating, naming the node.
    func testF4ActivationsBeyondTheMemoryBudgetNameTheNode() throws {
        let huge = try compile(try graph("model big\ninput x: f32[N, 100000, 100000, 3]\nc = conv2d(64, 3, padding: same)\n"))
        XCTAssertThrowsError(try huge.prepare(bindings: ["N": 1])) { error in
            XCTAssertTrue("\(error)".hasPrefix("input 'x' (output [1,100000,100000,3]) needs 120.0 GB, more than the"), "\(error)")
        }
        XCTAssertThrowsError(try graph("model big\ninput x: f32[N, 8, 8, 3]\np = zero_padding2d(2147483644)\n")) { error in
            XCTAssertEqual((error as? Diagnostic)?.message,
                           "pad 'p' has shape [N,4294967296,4294967296,3]: more than 576,460,752,303,423,487 elements per batch")
        }
        let padded = try compile(try graph("model big\ninput x: f32[N, 8, 8, 3]\np = zero_padding2d(100000)\n"))
        XCTAssertThrowsError(try padded.prepare(bindings: ["N": 1])) { error in
            XCTAssertTrue("\(error)".hasPrefix("pad 'p' (output [1,200008,200008,3]) needs 480.0 GB, more than the"), "\(error)")
        }
        let capped = try compile(try graph("model m\ninput x: f32[N, 64, 64, 3]\nc = conv2d(8, 3)\n"), budget: MemoryBudget(bytes: 100_000))
        XCTAssertThrowsError(try capped.prepare(bindings: ["N": 1])) { error in
            XCTAssertEqual("\(error)", "conv2d 'c' (output [1,62,62,8]) needs 123.0 kB, more than the 100.0 kB --max-memory allows")
        }
    }

    /// F9: a shape whose element count does not fit an Int is an error at check time.
    func testF9ShapesThatWrapAreRefusedByShapeInference() throws {
        XCTAssertThrowsError(try graph("model big\ninput x: f32[N, 2147483647, 2147483647, 2147483647]\nf = flatten()\n")) { error in
            XCTAssertEqual((error as? Diagnostic)?.message,
                           "input 'x' has shape [N,2147483647,2147483647,2147483647]: more than 576,460,752,303,423,487 elements per batch")
        }
        XCTAssertThrowsError(try graph("model big\ninput x: f32[N, 8]\nd = dense(2000000000)\ne = dense(2000000000)\n")) { error in
            XCTAssertEqual((error as? Diagnostic)?.message.contains("[2000000000,2000000000], more than"), true, "\(error)")
        }
    }

    /// F9: MACs that do not fit saturate and say so instead of wrapping to a small number.
    func testF9MACCountsSaturateInsteadOfWrapping() throws {
        let summary = ModelSummary(try graph("model m\ninput x: f32[N, 16777216, 16777216, 512]\nc = conv2d(512, 3, padding: same)\n"))
        XCTAssertEqual(summary.rows.last?.macsPerImage, Int.max)
        XCTAssertTrue(summary.description.contains("MACs per image: over 9,223,372,036,854,775,806"), summary.description)
    }

    /// F2: planning a 20,000-node chain took minutes (cubic alias analysis, quadratic placement).
    func testF2LongChainPlansInLinearishTime() throws {
        var text = "model m\ninput x: f32[N, 8]\n"
        for index in 0..<20_000 { text += "r\(index) = \(index % 2 == 0 ? "relu" : "sigmoid")()\n" }
        let start = Date()
        let model = try compile(try graph(text))
        let input = try Tensor(shape: [2, 8], values: (0..<16).map { Float($0) - 8 })
        let output = try XCTUnwrap(try model.run(["x": input])["r19999"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
        // relu then sigmoid, 10,000 times, by hand: each pair maps x to sigmoid(max(x, 0)).
        var expected = input.values
        for _ in 0..<10_000 { expected = expected.map { 1 / (1 + exp(-max($0, 0))) } }
        for (value, reference) in zip(output.values, expected) { XCTAssertEqual(value, reference, accuracy: 1e-6) }
        let (planned, _) = try model.memoryReport(bindings: ["N": 2])
        XCTAssertLessThanOrEqual(planned, 2 * 64 * 4, "a unary chain runs in place: one or two buffers")
    }

    /// F2: the optimising passes looked nodes up by linear search, once per node (quadratic);
    /// a 20,000-node chain now goes through the whole -O2 pipeline in seconds.
    func testF2PassPipelineIsNotQuadratic() throws {
        var text = "model m\ninput x: f32[N, 8]\n"
        for index in 0..<20_000 { text += "r\(index) = relu()\n" }
        let chain = try graph(text)
        let start = Date()
        let optimized = try PassPipeline.standard(level: .O2).run(chain).graph
        XCTAssertEqual(optimized.nodes.count, 20_000)
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
    }

    /// F2: the interval index finds exactly the placements the quadratic planner found.
    func testF2IndexedPlacementMatchesTheQuadraticReference() {
        var state: UInt64 = 42
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<40 {
            let requests = (0..<60).map { _ -> BufferRequest in
                let start = next(80)
                return BufferRequest(size: next(300) + 1, firstStep: start, lastStep: start + next(next(2) == 0 ? 4 : 40))
            }
            XCTAssertEqual(MemoryPlanner.plan(requests).offsets, quadraticPlan(requests))
        }
    }

    /// The placement as first written: every placed buffer is tested against each request.
    private func quadraticPlan(_ requests: [BufferRequest], alignment: Int = 16) -> [Int] {
        func aligned(_ value: Int) -> Int { (value + alignment - 1) / alignment * alignment }
        let order = requests.indices.sorted {
            (requests[$0].size, requests[$1].firstStep) > (requests[$1].size, requests[$0].firstStep)
        }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed: [Int] = []
        for index in order {
            let request = requests[index]
            let conflicts = placed
                .filter { requests[$0].firstStep <= request.lastStep && request.firstStep <= requests[$0].lastStep }
                .map { (start: offsets[$0], end: offsets[$0] + aligned(requests[$0].size)) }
                .sorted { $0.start < $1.start }
            var candidate = 0
            for conflict in conflicts {
                if candidate + aligned(request.size) <= conflict.start { break }
                candidate = max(candidate, conflict.end)
            }
            offsets[index] = candidate
            placed.append(index)
        }
        return offsets
    }
}
