import Foundation
import KeelIR
@testable import KeelONNX
import XCTest

/// Hand-encoded protobuf fields, so the expected bytes do not come from the scanner.
private enum Wire {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value, bytes: [UInt8] = []
        while value >= 0x80 { bytes.append(UInt8(value & 0x7F) | 0x80); value >>= 7 }
        return bytes + [UInt8(value)]
    }
    static func tag(_ field: UInt64, _ wireType: UInt64) -> [UInt8] { varint(field << 3 | wireType) }
    static func number(_ field: UInt64, _ value: UInt64) -> [UInt8] { tag(field, 0) + varint(value) }
    static func bytes(_ field: UInt64, _ payload: [UInt8]) -> [UInt8] {
        tag(field, 2) + varint(UInt64(payload.count)) + payload
    }
    static func string(_ field: UInt64, _ text: String) -> [UInt8] { bytes(field, Array(text.utf8)) }
    static func marker(_ index: UInt64) -> [UInt8] { number(WireFormatScan.spanMarkerField, index) }
    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
    }
    /// A float32 TensorProto: dims (1), data_type (2), name (8), raw_data (9).
    static func tensor(_ name: String, dims: [UInt64], raw: [UInt8]?) -> [UInt8] {
        dims.flatMap { number(1, $0) } + number(2, 1) + string(8, name) + (raw.map { bytes(9, $0) } ?? [])
    }
    static func model(graph: [UInt8]) -> [UInt8] { number(1, 8) + bytes(7, graph) + bytes(8, number(2, 13)) }
}

final class WireFormatScanTests: XCTestCase {
    private func scan(_ bytes: [UInt8], minimum: Int = 8) throws -> CompactModel {
        try bytes.withUnsafeBytes { try WireFormatScan.compactModel($0, minimumSpan: minimum) }
    }

    private let weights: [UInt8] = Array(0..<40)

    func testLargeRawDataBecomesAMarkerAndLengthsAreRecomputed() throws {
        let tensor = Wire.tensor("w", dims: [10], raw: weights)
        let input = Wire.model(graph: Wire.string(2, "g") + Wire.bytes(5, tensor))
        let compact = try scan(input)
        let expected = Wire.model(graph: Wire.string(2, "g")
                                    + Wire.bytes(5, Wire.tensor("w", dims: [10], raw: nil) + Wire.marker(0)))
        XCTAssertEqual(compact.bytes, expected)
        XCTAssertEqual(compact.spans.count, 1)
        let span = try XCTUnwrap(compact.spans.first)
        XCTAssertEqual(Array(input[span.offset..<span.offset + span.count]), weights)
    }

    func testFieldsInAnyOrderAndRawDataFirst() throws {
        let tensor = Wire.bytes(9, weights) + Wire.string(8, "w") + Wire.number(2, 1) + Wire.number(1, 10)
        let graph = Wire.bytes(5, tensor) + Wire.bytes(1, Wire.string(4, "Relu")) + Wire.string(2, "g")
        let input = Wire.bytes(7, graph) + Wire.number(1, 8)
        let compact = try scan(input)
        let expectedTensor = Wire.marker(0) + Wire.string(8, "w") + Wire.number(2, 1) + Wire.number(1, 10)
        XCTAssertEqual(compact.bytes, Wire.bytes(7, Wire.bytes(5, expectedTensor) + Array(graph.dropFirst(2 + tensor.count)))
                       + Wire.number(1, 8))
        XCTAssertEqual(compact.spans, [RawDataSpan(offset: 2 + 2 + 2, count: 40)])
    }

    func testAbsentEmptyAndSmallRawDataStay() throws {
        let graph = Wire.bytes(5, Wire.tensor("absent", dims: [0], raw: nil))
            + Wire.bytes(5, Wire.tensor("empty", dims: [0], raw: []))
            + Wire.bytes(5, Wire.tensor("small", dims: [1], raw: [1, 2, 3, 4]))
        let input = Wire.model(graph: graph)
        let compact = try scan(input)
        XCTAssertEqual(compact.bytes, input)
        XCTAssertEqual(compact.spans, [])
    }

    func testRawDataAtTheVeryEndOfTheFile() throws {
        let input = Wire.number(1, 8) + Wire.bytes(7, Wire.bytes(5, Wire.tensor("w", dims: [10], raw: weights)))
        let compact = try scan(input)
        XCTAssertEqual(compact.spans, [RawDataSpan(offset: input.count - 40, count: 40)])
    }

    func testLengthsThatOverrunTheBufferAreRejected() throws {
        let tensor = Wire.tensor("w", dims: [10], raw: weights)
        var input = Wire.model(graph: Wire.bytes(5, tensor))
        input.removeLast(Wire.bytes(8, Wire.number(2, 13)).count + 1)
        XCTAssertThrowsError(try scan(input)) { error in
            guard case WireFormatError.lengthOverrun(at: 2, _) = error else { return XCTFail("\(error)") }
        }
        // A length near 2^64 must not wrap around.
        let huge = Wire.tag(7, 2) + Wire.varint(UInt64.max - 3) + [0, 0, 0, 0]
        XCTAssertThrowsError(try scan(huge))
        // The inner (raw_data) length overruns its tensor, though not the file.
        let inner = Wire.number(2, 1) + Wire.tag(9, 2) + Wire.varint(100)
        let nested = Wire.bytes(7, Wire.bytes(5, inner)) + Array(repeating: 0, count: 200)
        XCTAssertThrowsError(try scan(nested)) { error in
            guard case WireFormatError.lengthOverrun = error else { return XCTFail("\(error)") }
        }
    }

    func testVarintsThatOverflowOrStopShortAreRejected() throws {
        let eleven = Wire.tag(1, 0) + Array(repeating: 0xFF, count: 10) + [0x01]
        XCTAssertThrowsError(try scan(eleven)) { XCTAssertEqual($0 as? WireFormatError, .varintOverflow(at: 1)) }
        let tenthTooBig = Wire.tag(1, 0) + Array(repeating: 0x80, count: 9) + [0x02]
        XCTAssertThrowsError(try scan(tenthTooBig)) { XCTAssertEqual($0 as? WireFormatError, .varintOverflow(at: 1)) }
        let maximum = Wire.number(1, UInt64.max)
        XCTAssertEqual(try scan(maximum).bytes, maximum)
        XCTAssertThrowsError(try scan(Wire.tag(1, 0) + [0x80])) { XCTAssertEqual($0 as? WireFormatError, .truncated(at: 1)) }
        XCTAssertThrowsError(try scan(Wire.tag(1, 1) + [0, 0, 0])) { XCTAssertEqual($0 as? WireFormatError, .truncated(at: 0)) }
        XCTAssertThrowsError(try scan(Wire.tag(1, 3))) { XCTAssertEqual($0 as? WireFormatError, .unsupportedWireType(3, at: 0)) }
    }

    func testATensorListedTwiceAndRawDataGivenTwice() throws {
        let first = Array(repeating: UInt8(7), count: 12)
        let tensor = Wire.string(8, "w") + Wire.bytes(9, first) + Wire.number(2, 1) + Wire.bytes(9, weights)
        let input = Wire.model(graph: Wire.bytes(5, tensor) + Wire.bytes(5, tensor))
        let compact = try scan(input)
        // protobuf keeps the last raw_data; the earlier one is dropped.
        let expectedTensor = Wire.string(8, "w") + Wire.number(2, 1) + Wire.marker(0)
        let secondTensor = Wire.string(8, "w") + Wire.number(2, 1) + Wire.marker(1)
        XCTAssertEqual(compact.bytes, Wire.model(graph: Wire.bytes(5, expectedTensor) + Wire.bytes(5, secondTensor)))
        XCTAssertEqual(compact.spans.count, 2)
        for span in compact.spans {
            XCTAssertEqual(Array(input[span.offset..<span.offset + span.count]), weights)
        }
        XCTAssertNotEqual(compact.spans[0].offset, compact.spans[1].offset)
        // A small last raw_data wins over a large earlier one.
        let smallLast = Wire.bytes(9, weights) + Wire.bytes(9, [1, 2, 3, 4])
        let smallCompact = try scan(Wire.model(graph: Wire.bytes(5, smallLast)))
        XCTAssertEqual(smallCompact.bytes, Wire.model(graph: Wire.bytes(5, Wire.bytes(9, [1, 2, 3, 4]))))
        XCTAssertEqual(smallCompact.spans, [])
    }

    func testUnknownFieldsAreKeptAndForeignMarkersDropped() throws {
        let unknown = Wire.number(99, 5) + Wire.bytes(98, [1, 2, 3]) + Wire.tag(97, 5) + [1, 2, 3, 4]
            + Wire.tag(96, 1) + Array(repeating: 9, count: 8)
        let tensor = unknown + Wire.marker(0) + Wire.tensor("w", dims: [10], raw: weights)
        let smallTensor = Wire.marker(3) + Wire.tensor("s", dims: [1], raw: [0, 0, 128, 63])
        let graph = unknown + Wire.bytes(5, tensor) + Wire.bytes(5, smallTensor)
        let input = unknown + Wire.model(graph: graph) + unknown
        let compact = try scan(input)
        let expectedGraph = unknown + Wire.bytes(5, unknown + Wire.tensor("w", dims: [10], raw: nil) + Wire.marker(0))
            + Wire.bytes(5, Wire.tensor("s", dims: [1], raw: [0, 0, 128, 63]))
        XCTAssertEqual(compact.bytes, unknown + Wire.model(graph: expectedGraph) + unknown)
        XCTAssertEqual(compact.spans.count, 1)
    }

    func testMarkerIndexDecoding() {
        let decode = { (bytes: [UInt8]) in bytes.withUnsafeBytes { WireFormatScan.spanIndex(markerBytes: $0) } }
        XCTAssertEqual(decode(Wire.varint(300)), 300)
        XCTAssertNil(decode([0x80]))
        XCTAssertNil(decode(Wire.varint(1) + [0]))
    }
}

/// The loader reads weights left in the file exactly as protobuf-c's copies, aligned or not.
final class MappedWeightsLoaderTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("keel-wire-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    private func write(_ bytes: [UInt8]) throws -> String {
        let path = folder.appendingPathComponent("model.onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testWeightsAtEveryAlignmentReadBack() throws {
        let values: [Float] = (0..<2048).map { Float($0) * 0.25 - 3 }
        for padding in 0..<4 {
            // An unknown string field of varying length moves the raw_data by one byte each time.
            let tensor = Wire.string(50, String(repeating: "x", count: padding))
                + Wire.tensor("w", dims: [2, 1024], raw: Wire.floats(values))
            let small = Wire.tensor("b", dims: [2], raw: Wire.floats([1.5, -2]))
            let path = try write(Wire.model(graph: Wire.bytes(5, tensor) + Wire.bytes(5, small)))
            let model = try loadONNXModel(path: path)
            XCTAssertEqual(model.graph.initializers.map(\.name), ["w", "b"])
            XCTAssertEqual(model.graph.initializers[0].data.shape, [2, 1024])
            XCTAssertEqual(model.graph.initializers[0].data.floats(), values, "padding \(padding)")
            XCTAssertEqual(model.graph.initializers[1].data.floats(), [1.5, -2])
            let start = try XCTUnwrap(model.graph.initializers[0].data.storage.bytes.baseAddress)
            XCTAssertEqual(Int(bitPattern: start) % 4, 0)
        }
    }

    func testWrongLengthStillFailsClearly() throws {
        let tensor = Wire.tensor("w", dims: [2048], raw: Wire.floats(Array(repeating: 1, count: 2047)))
        let path = try write(Wire.model(graph: Wire.bytes(5, tensor)))
        XCTAssertThrowsError(try loadONNXModel(path: path)) { error in
            XCTAssertEqual("\(error)".split(separator: "\n").count, 1)
            XCTAssertTrue("\(error)".contains("raw_data holds 8,188 bytes"), "\(error)")
        }
    }

    func testFixturesLoadTheSameWhateverIsLeftInTheFile() throws {
        for fixture in ["cnn.onnx", "tf2onnx_style.onnx", "typed_fields.onnx", "external.onnx"] {
            let path = Fixtures.path(fixture)
            let copied = try loadONNXModel(path: path, minimumMappedWeight: Int.max)
            let mapped = try loadONNXModel(path: path, minimumMappedWeight: 1)
            XCTAssertEqual(copied.graph.initializers.map(\.name), mapped.graph.initializers.map(\.name))
            for (left, right) in zip(copied.graph.initializers, mapped.graph.initializers) {
                XCTAssertEqual(left.data.dtype, right.data.dtype)
                XCTAssertEqual(left.data.shape, right.data.shape)
                XCTAssertEqual(Array(left.data.storage.bytes), Array(right.data.storage.bytes), "\(fixture) \(left.name)")
            }
        }
    }

    /// The fuzz of ONNXFuzzTests with every raw_data left in the file.
    func testDamagedModelsWithMappedWeightsNeverCrash() throws {
        var generator = SeededGenerator(seed: 0x7769_7265)
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("cnn.onnx"))))
        var rejected = 0
        for round in 0..<300 {
            var bytes = original
            if round % 2 == 0 {
                bytes.removeLast(Int.random(in: 1..<bytes.count, using: &generator))
            } else {
                for _ in 0..<Int.random(in: 1...6, using: &generator) {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
                }
            }
            let path = try write(bytes)
            do {
                _ = try importONNXGraph(try loadONNXModel(path: path, minimumMappedWeight: 1))
            } catch is ONNXError {
                rejected += 1
            } catch {
                XCTFail("variant \(round) threw a non-ONNX error: \(error)")
            }
        }
        XCTAssertGreaterThan(rejected, 0)
    }
}
