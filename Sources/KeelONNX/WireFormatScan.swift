/// Where one initializer's `raw_data` lies in the model file's bytes.
struct RawDataSpan: Equatable {
    var offset: Int
    var count: Int
}

/// A serialized ModelProto without its large initializer weights, and where those weights are.
/// protobuf-c copies every `raw_data` it parses; unpacking this compact message instead lets the
/// weights be read straight from the file mapping.
struct CompactModel {
    var bytes: [UInt8]
    /// Indexed by the value of each initializer's span marker field.
    var spans: [RawDataSpan]
}

/// Why the wire format could not be scanned, with the offset of the offending field.
enum WireFormatError: Error, Equatable {
    case truncated(at: Int)
    case varintOverflow(at: Int)
    case unsupportedWireType(Int, at: Int)
    case lengthOverrun(at: Int, length: UInt64)
}

/// Walks the protobuf wire format of a ModelProto down to `graph.initializer[*].raw_data` and
/// rewrites it: each initializer's last `raw_data` of at least `minimumSpan` bytes is replaced by
/// a marker field holding an index into `spans`, every other raw_data of the tensor is dropped
/// (protobuf keeps only the last), and every enclosing length prefix is recomputed. All other
/// fields, known or not, are copied verbatim so protobuf-c parses them exactly as before.
enum WireFormatScan {
    /// ModelProto.graph, GraphProto.initializer, TensorProto.raw_data (spec/onnx.proto).
    static let graphField: UInt64 = 7
    static let initializerField: UInt64 = 5
    static let rawDataField: UInt64 = 9
    /// The largest field number protobuf allows; ONNX will not use it. Markers found in the
    /// input are dropped, so a file cannot point a tensor at bytes of its choosing.
    static let spanMarkerField: UInt64 = (1 << 29) - 1
    static let defaultMinimumSpan = 4096

    static func compactModel(_ bytes: UnsafeRawBufferPointer,
                             minimumSpan: Int = defaultMinimumSpan) throws -> CompactModel {
        var scan = Scan(input: bytes, minimumSpan: minimumSpan)
        let body = try scan.model(0..<bytes.count)
        return CompactModel(bytes: body, spans: scan.spans)
    }

    /// The span index a tensor's marker field holds, from protobuf-c's unknown-field bytes.
    static func spanIndex(markerBytes: UnsafeRawBufferPointer) -> Int? {
        var reader = WireReader(input: markerBytes)
        guard let value = try? reader.varint(), reader.position == markerBytes.count,
              value <= UInt64(Int.max) else { return nil }
        return Int(value)
    }
}

/// One field as found on the wire: its number, wire type, where it starts and its tag ends,
/// where it ends and, for length-delimited fields, where its payload lies.
struct WireField {
    var number: UInt64
    var wireType: Int
    var start: Int
    var tagEnd: Int
    var end: Int
    var payload: Range<Int>
}

/// Reads varints and fields from a buffer, never past its end.
struct WireReader {
    let input: UnsafeRawBufferPointer
    var position = 0
    var limit: Int

    init(input: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.input = input
        self.position = range?.lowerBound ?? 0
        self.limit = range?.upperBound ?? input.count
    }

    var atEnd: Bool { position >= limit }

    /// A base-128 varint of at most ten bytes whose value fits 64 bits.
    mutating func varint() throws -> UInt64 {
        let start = position
        var value: UInt64 = 0
        for index in 0..<10 {
            guard position < limit else { throw WireFormatError.truncated(at: start) }
            let byte = input[position]
            position += 1
            if index == 9 && byte > 1 { throw WireFormatError.varintOverflow(at: start) }
            value |= UInt64(byte & 0x7F) << UInt64(7 * index)
            if byte & 0x80 == 0 { return value }
        }
        throw WireFormatError.varintOverflow(at: start)
    }

    mutating func field() throws -> WireField {
        let start = position
        let tag = try varint()
        let tagEnd = position
        let wireType = Int(tag & 7)
        var payload = position..<position
        switch wireType {
        case 0: _ = try varint()
        case 1: try skip(8, from: start)
        case 5: try skip(4, from: start)
        case 2:
            let length = try varint()
            guard length <= UInt64(limit - position) else {
                throw WireFormatError.lengthOverrun(at: start, length: length)
            }
            payload = position..<(position + Int(length))
            position = payload.upperBound
        default:
            // Groups (3, 4) are deprecated and protobuf-c rejects them; 6 and 7 do not exist.
            throw WireFormatError.unsupportedWireType(wireType, at: start)
        }
        return WireField(number: tag >> 3, wireType: wireType, start: start, tagEnd: tagEnd, end: position,
                         payload: payload)
    }

    private mutating func skip(_ count: Int, from start: Int) throws {
        guard count <= limit - position else { throw WireFormatError.truncated(at: start) }
        position += count
    }
}

/// The rewriting walk; `spans` grows as initializers give up their weights.
private struct Scan {
    let input: UnsafeRawBufferPointer
    let minimumSpan: Int
    var spans: [RawDataSpan] = []

    init(input: UnsafeRawBufferPointer, minimumSpan: Int) {
        self.input = input
        self.minimumSpan = minimumSpan
    }

    mutating func model(_ range: Range<Int>) throws -> [UInt8] {
        try rewrite(range) { scan, field in
            guard field.number == WireFormatScan.graphField, field.wireType == 2 else { return nil }
            return try scan.graph(field.payload)
        }
    }

    mutating func graph(_ range: Range<Int>) throws -> [UInt8] {
        try rewrite(range) { scan, field in
            guard field.number == WireFormatScan.initializerField, field.wireType == 2 else { return nil }
            return try scan.tensor(field.payload)
        }
    }

    mutating func tensor(_ range: Range<Int>) throws -> [UInt8] {
        var fields: [WireField] = []
        var reader = WireReader(input: input, range: range)
        while !reader.atEnd { fields.append(try reader.field()) }
        let lastRawData = fields.lastIndex { $0.number == WireFormatScan.rawDataField && $0.wireType == 2 }
        var output: [UInt8] = []
        output.reserveCapacity(range.count)
        for (index, field) in fields.enumerated() {
            if field.number == WireFormatScan.spanMarkerField { continue }
            let isRawData = field.number == WireFormatScan.rawDataField && field.wireType == 2
            if isRawData && index != lastRawData { continue }
            if isRawData && field.payload.count >= minimumSpan {
                appendVarint(WireFormatScan.spanMarkerField << 3, to: &output)
                appendVarint(UInt64(spans.count), to: &output)
                spans.append(RawDataSpan(offset: field.payload.lowerBound, count: field.payload.count))
            } else {
                append(field.start..<field.end, to: &output)
            }
        }
        return output
    }

    /// Copies the fields of `range`, replacing each length-delimited one for which `nested`
    /// returns new contents (the tag kept, the length prefix recomputed).
    private mutating func rewrite(_ range: Range<Int>,
                                  nested: (inout Scan, WireField) throws -> [UInt8]?) throws -> [UInt8] {
        var output: [UInt8] = []
        var reader = WireReader(input: input, range: range)
        var verbatimStart = range.lowerBound
        while !reader.atEnd {
            let field = try reader.field()
            guard let contents = try nested(&self, field) else { continue }
            append(verbatimStart..<field.tagEnd, to: &output)
            appendVarint(UInt64(contents.count), to: &output)
            output.append(contentsOf: contents)
            verbatimStart = field.end
        }
        append(verbatimStart..<range.upperBound, to: &output)
        return output
    }

    private func append(_ range: Range<Int>, to output: inout [UInt8]) {
        guard !range.isEmpty else { return }
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[range]))
    }
}

func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
    var value = value
    while value >= 0x80 {
        output.append(UInt8(truncatingIfNeeded: value) | 0x80)
        value >>= 7
    }
    output.append(UInt8(value))
}
