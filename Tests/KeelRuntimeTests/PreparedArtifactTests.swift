import Foundation
import KeelFormat
import KeelIR
import KeelKernels
import KeelPasses
import XCTest
@testable import KeelRuntime

/// Version 2 .keelc files: conv filters stored prepared and used in place from the mapping.
final class PreparedArtifactTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-prepared-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    /// `wide` is 3x3 with 16 channels in and out (Winograd: 6×6 tiles already at batch 1);
    /// `edge` is 5x5 (im2col GEMM).
    private func convGraph() throws -> Graph {
        let source = """
        model prepared
        input image: f32[N, 24, 24, 16] nhwc
        wide = conv2d(16, 3, padding: same, activation: relu)
        edge = conv2d(4, 5, padding: same)
        output edge
        """
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: folder + "/prepared.keel")).graph
        for (name, constant) in graph.constants {
            graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 5)
        }
        return graph
    }

    private func input(batch: Int) throws -> Tensor {
        var generator = SplitMix64(seed: UInt64(17 + batch))
        let count = batch * 24 * 24 * 16
        return try Tensor(shape: [batch, 24, 24, 16], values: (0..<count).map { _ in Float(generator.nextUnit()) - 0.5 })
    }

    /// Address ranges this process maps from `path`, read from the kernel's own table.
    private func mappedRanges(of path: String) throws -> [Range<UInt>] {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        // Read to the end: /proc files report size 0, and a single sized read stops after one page.
        let maps = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/maps")).readDataToEndOfFile()
        return String(decoding: maps, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard line.hasSuffix(resolved), let range = line.split(separator: " ").first else { return nil }
            let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
            return bounds.count == 2 ? bounds[0]..<bounds[1] : nil
        }
    }

    private func writePrepared() throws -> (graph: Graph, path: String) {
        let graph = try convGraph()
        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        let filters = try model.preparedFilters()
        XCTAssertEqual(filters.map(\.key), ["conv:edge/kernel", "winograd:wide/kernel"])
        // Winograd panels say whether they are split into halves, as this CPU's GEMM asks.
        let split = PanelLayout(depth: 16).splitHalves
        XCTAssertEqual(filters.map(\.dims), [[5, 5, 16, 4, 1], [16, 16] + (split ? [16] : [])])
        let path = folder + "/prepared.keelc"
        try CompiledArtifact.write(model.graph, prepared: filters, provenance: .test, to: path)
        return (graph, path)
    }

    func testPreparedFiltersRoundTripInPlaceAndRunTheSame() throws {
        let (graph, path) = try writePrepared()
        let contents = try CompiledArtifact.read(path: path)
        // Filters only conv2d reads are kept in their prepared form alone.
        XCTAssertNil(contents.graph.constants["wide/kernel"]?.data)
        XCTAssertNil(contents.graph.constants["edge/kernel"]?.data)
        XCTAssertNotNil(contents.graph.constants["wide/bias"]?.data)
        XCTAssertEqual(contents.prepared.map(\.kind), [.packed, .winograd])
        // 16 input channels by 16 outputs padded to one 32-column panel, for 36 Winograd points;
        // 5·5·16·4 packed taps.
        XCTAssertEqual(contents.prepared.map { $0.withUnsafeValues(\.count) }, [5 * 5 * 16 * 4, 36 * 16 * 32])
        let ranges = try mappedRanges(of: path)
        XCTAssertFalse(ranges.isEmpty)
        for filter in contents.prepared {
            let address = filter.withUnsafeValues { UInt(bitPattern: $0.baseAddress) }
            XCTAssertTrue(ranges.contains { $0.contains(address) }, "\(filter.key) was copied out of the mapping")
        }
        let original = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        let mapped = try CompiledModel(graph: contents.graph, prepared: contents.prepared, context: ExecutionContext(threads: 1))
        for batch in [1, 3] {
            let image = try input(batch: batch)
            XCTAssertEqual(try mapped.run(["image": image]), try original.run(["image": image]), "batch \(batch)")
        }
    }

    /// Inception's factorised 1×7 and 7×1 layers run line Winograd already at batch 1 (17×17, 64
    /// and 48 channels); their transformed filters are stored as such and run the same from the mapping.
    func testLineWinogradFiltersRoundTrip() throws {
        let source = """
        model factorised
        input image: f32[N, 17, 17, 64] nhwc
        row = conv2d(64, (1, 7), padding: same, activation: relu)
        column = conv2d(48, (7, 1), padding: same)
        output column
        """
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: folder + "/factorised.keel")).graph
        for (name, constant) in graph.constants {
            graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 9)
        }
        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        let filters = try model.preparedFilters()
        XCTAssertEqual(filters.map(\.key), ["linewinograd:column/kernel", "linewinograd:row/kernel"])
        let split = PanelLayout(depth: 64).splitHalves ? [16] : []
        XCTAssertEqual(filters.map(\.dims), [[7, 64, 48] + split, [7, 64, 64] + split])
        let path = folder + "/factorised.keelc"
        try CompiledArtifact.write(model.graph, prepared: filters, provenance: .test, to: path)
        let contents = try CompiledArtifact.read(path: path)
        XCTAssertEqual(contents.prepared.map(\.kind), [.lineWinograd, .lineWinograd])
        // Ten points of [64 inputs][two 32-column panels].
        XCTAssertEqual(contents.prepared.map { $0.withUnsafeValues(\.count) }, [10 * 64 * 64, 10 * 64 * 64])
        try assertMappedRunsAlike(contents, model, image: [17, 17, 64], seed: 40)
        // Damaged dimensions are refused with the reason, on one line.
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        for (dims, message) in [([7, 64], "are not [taps, inputs, outputs]"), ([9, 64, 64] + split, "no transform for 9 taps along a line"),
                                ([7, 65, 64] + split, "expected for 7 taps, 65 input and 64 output channels")] {
            try assertRefused(good, key: "linewinograd:row/kernel", dims: dims, message: message)
        }
    }

    /// Inception's 35×35 5×5 layer (48 → 64 channels) runs F(4×4, 5×5) at batch 1; its filter is
    /// stored as 64 points under its own kind (a 1×5 line's dimensions would read the same) and runs
    /// the same from the mapping. A square kind whose values do not fill 64 points is refused.
    func testSquareWinogradFiltersRoundTrip() throws {
        let source = """
        model mixed
        input image: f32[N, 35, 35, 48] nhwc
        branch = conv2d(64, (5, 5), padding: same, activation: relu)
        output branch
        """
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: folder + "/mixed.keel")).graph
        for (name, constant) in graph.constants {
            graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: 11)
        }
        let model = try CompiledModel(graph: graph, context: ExecutionContext(threads: 1))
        XCTAssertEqual(try model.kernelChoices(bindings: ["N": 1]).map(\.choice.algorithm), ["winograd5x5"])
        let filters = try model.preparedFilters()
        XCTAssertEqual(filters.map(\.key), ["squarewinograd:branch/kernel"])
        let split = PanelLayout(depth: 48).splitHalves ? [16] : []
        XCTAssertEqual(filters.map(\.dims), [[5, 48, 64] + split])
        let path = folder + "/mixed.keelc"
        try CompiledArtifact.write(model.graph, prepared: filters, provenance: .test, to: path)
        let contents = try CompiledArtifact.read(path: path)
        XCTAssertEqual(contents.prepared.map(\.kind), [.squareWinograd])
        // 64 points of [48 inputs][two 32-column panels].
        XCTAssertEqual(contents.prepared.map { $0.withUnsafeValues(\.count) }, [64 * 48 * 64])
        try assertMappedRunsAlike(contents, model, image: [35, 35, 48], seed: 50)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        try assertRefused(good, key: "squarewinograd:branch/kernel", dims: [5, 48, 100] + split,
                          message: "expected for 5 taps square, 48 input and 100 output channels")
    }

    /// The model mapped from `contents` gives `model`'s bits at batch 1 and 2 on random images of `image` extents.
    private func assertMappedRunsAlike(_ contents: CompiledArtifact.Contents, _ model: CompiledModel, image extents: [Int],
                                       seed: UInt64) throws {
        let mapped = try CompiledModel(graph: contents.graph, prepared: contents.prepared, context: ExecutionContext(threads: 1))
        for batch in [1, 2] {
            var generator = SplitMix64(seed: seed + UInt64(batch))
            let count = extents.reduce(batch, *)
            let image = try Tensor(shape: [batch] + extents, values: (0..<count).map { _ in Float(generator.nextUnit()) - 0.5 })
            XCTAssertEqual(try mapped.run(["image": image]), try model.run(["image": image]), "batch \(batch)")
        }
    }

    /// `good` with prepared filter `key` given `dims` is refused with `message`, on one line.
    private func assertRefused(_ good: Data, key: String, dims: [Int], message: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let damaged = try editingHeader(good) { header in
            var records = header["prepared"] as? [[String: Any]] ?? []
            if let index = records.firstIndex(where: { $0["key"] as? String == key }) { records[index]["dims"] = dims }
            header["prepared"] = records
        }
        let damagedPath = folder + "/damaged.keelc"
        try damaged.write(to: URL(fileURLWithPath: damagedPath))
        XCTAssertThrowsError(try CompiledArtifact.read(path: damagedPath), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains("prepared filter '\(key)': "), "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(message), "\(error)", file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), "\(error)", file: file, line: line)
        }
    }

    func testFiltersStoredPreparedOnlyNeedTheirPreparedForm() throws {
        let (_, path) = try writePrepared()
        let contents = try CompiledArtifact.read(path: path)
        XCTAssertThrowsError(try CompiledModel(graph: contents.graph, context: ExecutionContext(threads: 1))) { error in
            XCTAssertTrue("\(error)".contains("edge/kernel"), "\(error)")
        }
    }

    /// Rewrites the header JSON (and its length and checksum), leaving the sections where they are.
    private func editingHeader(_ file: Data, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        let length = Int(file.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self) })
        let weightsOffset = Int(file.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: file[64..<(64 + length)]) as? [String: Any])
        edit(&header)
        let encoded = try JSONSerialization.data(withJSONObject: header)
        XCTAssertLessThanOrEqual(64 + encoded.count, weightsOffset)
        var result = file
        result.replaceSubrange(64..<weightsOffset, with: encoded + Data(count: weightsOffset - 64 - encoded.count))
        withUnsafeBytes(of: UInt64(encoded.count).littleEndian) { result.replaceSubrange(16..<24, with: $0) }
        withUnsafeBytes(of: stableHash(encoded).littleEndian) { result.replaceSubrange(24..<32, with: $0) }
        return result
    }

    private func editingPrepared(_ file: Data, _ edit: @escaping (inout [String: Any]) -> Void) throws -> Data {
        try editingHeader(file) { header in
            var records = header["prepared"] as? [[String: Any]] ?? []
            if let index = records.firstIndex(where: { $0["key"] as? String == "winograd:wide/kernel" }) {
                edit(&records[index])
            }
            header["prepared"] = records
        }
    }

    func testDamagedPreparedSectionsAreRefused() throws {
        let (_, path) = try writePrepared()
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func refused(_ bytes: Data, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let damaged = folder + "/damaged.keelc"
            try bytes.write(to: URL(fileURLWithPath: damaged))
            XCTAssertThrowsError(try CompiledArtifact.read(path: damaged), file: file, line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(message), text, file: file, line: line)
                XCTAssertFalse(text.contains("\n"), text, file: file, line: line)
            }
        }
        try refused(good.prefix(good.count - 4), "the file is truncated")
        try refused(try editingPrepared(good) { $0["dims"] = [17, 16] },
                    "prepared filter 'winograd:wide/kernel': ")
        try refused(try editingPrepared(good) { $0["byteCount"] = 36 * 16 * 32 * 4 + 4 },
                    "prepared filter 'winograd:wide/kernel' lies outside the prepared section")
        try refused(try editingPrepared(good) { $0["offset"] = 4 },
                    "prepared filter 'winograd:wide/kernel' lies outside the prepared section")
        try refused(try editingPrepared(good) { $0["key"] = "winograd:missing/kernel" },
                    "prepared filter 'winograd:missing/kernel' names no constant of the graph")
        try refused(try editingPrepared(good) { $0["kind"] = "packed" },
                    "prepared filter 'winograd:wide/kernel' does not match its kind 'packed'")
        try refused(try editingHeader(good) { $0["prepared"] = [] },
                    "constant 'edge/kernel' is stored prepared only, but no prepared filter holds it")
    }
}
