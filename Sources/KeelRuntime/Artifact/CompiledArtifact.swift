import Foundation
import KeelIR

/// Why a .keelc file was refused. One line each, naming the file.
public enum ArtifactError: Error, Equatable, CustomStringConvertible {
    case corrupt(String)
    case file(path: String, reason: String)

    public var description: String {
        switch self {
        case .corrupt(let reason): return "corrupt compiled model: \(reason)"
        case .file(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// A compiled model on disk (`.keelc`): the optimised graph, its weights and its conv filters
/// already prepared for their kernels, written once by `keel compile -o` and mapped back without
/// copying, so starting a run costs milliseconds instead of transforming every filter again.
///
/// Layout (little-endian):
///
///     0   magic "KEELC\0\0\0"          8 bytes
///     8   format version               UInt32
///     12  reserved (0)                 UInt32
///     16  header length                UInt64   JSON describing the graph (ArtifactGraph)
///     24  header checksum              UInt64   FNV-1a of the JSON
///     32  weights offset               UInt64   page-aligned
///     40  weights length               UInt64
///     48  prepared offset              UInt64   page-aligned (version 3; 0 in version 1)
///     56  prepared length              UInt64
///     64  header JSON …, zero padding, weights (each constant 64-byte aligned),
///         zero padding, prepared filters (each 64-byte aligned, float32)
///
/// Version 2 added the prepared section: Winograd-transformed or GEMM-packed filters, listed in
/// the header with their kind, dimensions, offset and length. A filter only conv2d reads is kept
/// in its prepared form alone; its constant then records no bytes. Version 3 stores each
/// Winograd matrix in 32-column panels (`WinogradWeights`); version 2's row-major matrices cannot
/// be used in place, and its filters are not stored otherwise, so version 2 files are refused.
/// Version 4 adds `provenance` to the header (source, weights and binding, seed, -O level or
/// passes, precision, and where each layer of the source can be cut). Files of versions 1–3 do
/// not say how they were made, so they are refused with that reason: compile them again.
/// Version 5 adds prepared filters of kind `bf16` (`keel compile --precision bf16`): rounded to
/// bf16 and packed for the bf16 kernels, two values per float slot. Version 6 lets Winograd and dense
/// panels be stored split into 16-column halves (dimensions [inputs, outputs, 16]), as AVX2 CPUs
/// pack them (`PanelLayout`). Version 7 adds prepared filters of kind `lineWinograd`: 1×k and k×1
/// filters in the line-Winograd domain (`LineWinogradWeights`, dimensions [taps, inputs, outputs]).
/// Version 8 adds kind `squareWinograd`: 5×5 filters in the F(4×4, 5×5) domain, stored like the
/// line ones ([taps, inputs, outputs], the kind telling the square). Versions 4 to 7 read as before.
/// A file of another version, a truncated file, a header that fails its checksum or a prepared
/// section whose entries do not fit is refused with the reason. Weight bytes are checksummed
/// in the header but checked only when asked (`read(path:verify:)`, `--verify`): checking reads
/// all of them at start-up.
public enum CompiledArtifact {
    public static let formatVersion: UInt32 = 8
    static let readableVersions: [UInt32] = [4, 5, 6, 7, formatVersion]
    static let magic: [UInt8] = Array("KEELC".utf8) + [0, 0, 0]
    static let prefixSize = 64
    static let weightAlignment = 64
    static let pageSize = 4096

    /// What a .keelc holds: the graph (constants point into the mapping) and the prepared filters
    /// (borrowed from the mapping too), ready for `CompiledModel(graph:prepared:context:)`.
    public struct Contents: Sendable {
        public var graph: Graph
        public var prepared: [PreparedFilter]
        public var provenance: ArtifactProvenance
    }

    /// Writes `graph` and `prepared` (from `CompiledModel.preparedFilters()`). A constant without
    /// data is accepted when `prepared` holds its prepared form; it is then stored that way only.
    public static func write(_ graph: Graph, prepared: [PreparedFilter] = [], provenance: ArtifactProvenance, to path: String) throws {
        let preparedConstants = Set(prepared.map(\.constant))
        var records: [ArtifactGraph.ConstantRecord] = []
        var blobs: [(offset: Int, bytes: UnsafeRawBufferPointer)] = []
        var weightsLength = 0
        for constant in graph.orderedConstants {
            guard let data = constant.data else {
                guard preparedConstants.contains(constant.name), constant.type.shape.knownExtents != nil else {
                    throw ArtifactError.file(path: path, reason: "constant '\(constant.name)' has no value; bind weights before compiling to a file")
                }
                records.append(.init(name: constant.name, type: .init(constant.type), role: constant.role.rawValue,
                                     trainable: constant.trainable, offset: 0, byteCount: 0, preparedOnly: true))
                continue
            }
            let bytes = UnsafeRawBufferPointer(rebasing: data.storage.bytes.prefix(data.elementCount * data.dtype.byteSize))
            weightsLength = align(weightsLength, to: weightAlignment)
            records.append(.init(name: constant.name,
                                 type: .init(TensorType(data.dtype, Shape(known: data.shape))),
                                 role: constant.role.rawValue, trainable: constant.trainable,
                                 offset: weightsLength, byteCount: bytes.count))
            blobs.append((weightsLength, bytes))
            weightsLength += bytes.count
        }
        var preparedRecords: [ArtifactGraph.PreparedRecord] = []
        var preparedBlobs: [(offset: Int, bytes: UnsafeRawBufferPointer)] = []
        var preparedLength = 0
        for filter in prepared {
            // The values stay valid while `prepared` lives, which spans the whole write below.
            let bytes = filter.withUnsafeValues { UnsafeRawBufferPointer($0) }
            preparedLength = align(preparedLength, to: weightAlignment)
            preparedRecords.append(.init(key: filter.key, kind: filter.kind, dims: filter.dims,
                                         offset: preparedLength, byteCount: bytes.count))
            preparedBlobs.append((preparedLength, bytes))
            preparedLength += bytes.count
        }
        var description = ArtifactGraph(
            name: graph.name, source: graph.source,
            inputs: graph.inputs.map { .init(name: $0.name, type: .init($0.type), layout: $0.layout?.rawValue, preprocess: $0.preprocess) },
            constants: records,
            nodes: graph.nodes.map { node in
                .init(name: node.name, op: node.op.rawValue, inputs: node.inputs, outputs: node.outputs,
                      attributes: node.attributes.values.mapValues(ArtifactGraph.Attribute.init),
                      locations: node.locations.map { .init(file: $0.file, line: $0.line, column: $0.column) })
            },
            outputs: graph.outputs.map { .init(name: $0.name, value: $0.value, labels: $0.labels) },
            valueTypes: graph.valueTypes.mapValues(ArtifactGraph.TypeRecord.init),
            prepared: preparedRecords, provenance: provenance)
        description.contentChecksum = ContentChecksum.text(blobs.map(\.bytes) + preparedBlobs.map(\.bytes))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = try encoder.encode(description)
        let weightsOffset = align(prefixSize + header.count, to: pageSize)
        let preparedOffset = preparedLength > 0 ? align(weightsOffset + weightsLength, to: pageSize) : 0

        var prefix = Data(magic)
        append(&prefix, UInt32(formatVersion))
        append(&prefix, UInt32(0))
        append(&prefix, UInt64(header.count))
        append(&prefix, stableHash(header))
        append(&prefix, UInt64(weightsOffset))
        append(&prefix, UInt64(weightsLength))
        append(&prefix, UInt64(preparedOffset))
        append(&prefix, UInt64(preparedLength))

        let file = try StagedFile(path: path)
        do {
            try file.write(prefix + header)
            var written = prefixSize + header.count
            let placed = blobs.map { (weightsOffset + $0.offset, $0.bytes) } + preparedBlobs.map { (preparedOffset + $0.offset, $0.bytes) }
            try withExtendedLifetime(prepared) {
                for (offset, bytes) in placed where !bytes.isEmpty {
                    if offset > written { try file.write(Data(count: offset - written)) }
                    try file.write(bytes)
                    written = offset + bytes.count
                }
            }
            // A model without weights still ends where its (empty) weight section starts, which
            // the reader checks: a weightless .keelc was written 'truncated' and never read back.
            let end = max(weightsOffset + weightsLength, preparedOffset + preparedLength)
            if end > written { try file.write(Data(count: end - written)) }
            try file.commit()
        } catch {
            file.cancel()
            throw error
        }
    }

    /// Maps `path` and rebuilds the graph and its prepared filters; constant data and prepared
    /// values point into the mapping.
    /// `verify` also checks every weight byte against the header's checksum.
    public static func read(path: String, verify: Bool = false) throws -> Contents {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let error as FileError {
            throw ArtifactError.file(path: path, reason: error.reason)
        }
        let bytes = file.bytes
        func fail(_ reason: String) -> ArtifactError { .file(path: path, reason: "not a usable compiled model: \(reason)") }
        guard bytes.count >= prefixSize, Array(bytes.prefix(magic.count)) == magic else {
            throw fail("it does not start with the .keelc signature")
        }
        let version = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        guard readableVersions.contains(version) else {
            let readable = readableVersions.dropLast().map(String.init).joined(separator: ", ") + " and \(formatVersion)"
            let older = version < formatVersion ? " (an older keel's, which does not record how the file was made)" : ""
            throw fail("format version \(version)\(older), but this keel reads \(readableVersions.count == 1 ? "version" : "versions") \(readable); compile it again with `keel compile`")
        }
        let headerLength = Int(clamping: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian)
        let checksum = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        let weightsOffset = Int(clamping: bytes.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian)
        let weightsLength = Int(clamping: bytes.loadUnaligned(fromByteOffset: 40, as: UInt64.self).littleEndian)
        let preparedOffset = Int(clamping: bytes.loadUnaligned(fromByteOffset: 48, as: UInt64.self).littleEndian)
        let preparedLength = Int(clamping: bytes.loadUnaligned(fromByteOffset: 56, as: UInt64.self).littleEndian)
        guard headerLength <= bytes.count - prefixSize, weightsOffset >= prefixSize + headerLength,
              weightsOffset <= bytes.count, weightsLength <= bytes.count - weightsOffset,
              preparedLength == 0 || (preparedOffset >= weightsOffset + weightsLength && preparedOffset <= bytes.count
                                      && preparedLength <= bytes.count - preparedOffset) else {
            throw fail("the file is truncated (\(formatCount(bytes.count)) bytes)")
        }
        let header = Data(UnsafeRawBufferPointer(rebasing: bytes[prefixSize..<(prefixSize + headerLength)]))
        guard stableHash(header) == checksum else { throw fail("the header fails its checksum") }
        let description: ArtifactGraph
        do {
            description = try JSONDecoder().decode(ArtifactGraph.self, from: header)
        } catch {
            throw fail("the header does not decode")
        }
        do {
            let graph = try graph(from: description, weights: UnsafeRawBufferPointer(rebasing: bytes[weightsOffset..<(weightsOffset + weightsLength)]),
                                  owner: file)
            let section = preparedLength == 0 ? UnsafeRawBufferPointer(start: nil, count: 0)
                : UnsafeRawBufferPointer(rebasing: bytes[preparedOffset..<(preparedOffset + preparedLength)])
            let prepared = try preparedFilters(description.prepared ?? [], section: section, graph: graph,
                                               preparedOnly: Set(description.constants.filter { $0.preparedOnly == true }.map(\.name)),
                                               owner: file)
            guard let provenance = description.provenance else { throw ArtifactError.corrupt("the header does not say how the file was made") }
            if verify {
                try ContentChecksum.verify(description, weights: UnsafeRawBufferPointer(rebasing: bytes[weightsOffset..<(weightsOffset + weightsLength)]),
                                           prepared: section)
            }
            return Contents(graph: graph, prepared: prepared, provenance: provenance)
        } catch let error as ArtifactError {
            if case .corrupt(let reason) = error { throw fail(reason) }
            throw error
        }
    }

    private static func graph(from description: ArtifactGraph, weights: UnsafeRawBufferPointer, owner: MappedFile) throws -> Graph {
        var graph = Graph(name: description.name, source: description.source)
        for record in description.inputs {
            graph.inputs.append(GraphInput(name: record.name, type: try record.type.tensorType(),
                                           layout: record.layout.flatMap(Layout.init(rawValue:)), preprocess: record.preprocess))
        }
        for record in description.constants {
            let type = try record.type.tensorType()
            guard let role = ParameterRole(rawValue: record.role), let extents = type.shape.knownExtents else {
                throw ArtifactError.corrupt("constant '\(record.name)' has an unknown role or shape")
            }
            if record.preparedOnly == true {
                guard record.byteCount == 0 else { throw ArtifactError.corrupt("constant '\(record.name)' is stored prepared only, yet has bytes") }
                graph.constants[record.name] = Constant(name: record.name, type: type, role: role, trainable: record.trainable)
                continue
            }
            guard let count = Shape.checkedElementCount(extents) else {
                throw ArtifactError.corrupt("constant '\(record.name)' has shape \(type.shape), too large to address")
            }
            guard record.offset >= 0, record.byteCount == count * type.dtype.byteSize, record.offset <= weights.count - record.byteCount else {
                throw ArtifactError.corrupt("constant '\(record.name)' lies outside the weights")
            }
            let view = UnsafeRawBufferPointer(rebasing: weights[record.offset..<(record.offset + record.byteCount)])
            // The storage keeps the mapping alive; nothing is copied.
            let storage = TensorStorage(bytes: view, release: { _ = owner })
            graph.constants[record.name] = Constant(name: record.name, type: type, role: role, trainable: record.trainable,
                                                    data: TensorData(dtype: type.dtype, shape: extents, storage: storage))
        }
        for record in description.nodes {
            guard let op = OpKind(rawValue: record.op) else { throw ArtifactError.corrupt("unknown op '\(record.op)'") }
            graph.nodes.append(Node(name: record.name, op: op, inputs: record.inputs, outputs: record.outputs,
                                    attributes: Attributes(record.attributes.mapValues(\.value)),
                                    locations: record.locations.map(SourceLocation.init)))
        }
        graph.outputs = description.outputs.map { GraphOutput(name: $0.name, value: $0.value, labels: $0.labels) }
        graph.valueTypes = try description.valueTypes.mapValues { try $0.tensorType() }
        return graph
    }

    /// The prepared filters, borrowed from the mapping after checking each lies inside the
    /// section, is aligned, names a constant of the graph, and has as many values as its dims say.
    private static func preparedFilters(_ records: [ArtifactGraph.PreparedRecord], section: UnsafeRawBufferPointer,
                                        graph: Graph, preparedOnly: Set<String>, owner: MappedFile) throws -> [PreparedFilter] {
        var filters: [PreparedFilter] = []
        var keys = Set<String>()
        for record in records {
            let prefix = record.kind.key("")
            guard record.key.hasPrefix(prefix) else {
                throw ArtifactError.corrupt("prepared filter '\(record.key)' does not match its kind '\(record.kind.rawValue)'")
            }
            let constant = String(record.key.dropFirst(prefix.count))
            guard graph.constants[constant] != nil else {
                throw ArtifactError.corrupt("prepared filter '\(record.key)' names no constant of the graph")
            }
            guard keys.insert(record.key).inserted else { throw ArtifactError.corrupt("prepared filter '\(record.key)' appears twice") }
            guard record.offset >= 0, record.byteCount >= 0, record.offset <= section.count - record.byteCount,
                  record.offset % weightAlignment == 0, record.byteCount % MemoryLayout<Float>.stride == 0 else {
                throw ArtifactError.corrupt("prepared filter '\(record.key)' lies outside the prepared section")
            }
            let raw = UnsafeRawBufferPointer(rebasing: section[record.offset..<(record.offset + record.byteCount)])
            guard let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else {
                throw ArtifactError.corrupt("prepared filter '\(record.key)' is empty or misaligned")
            }
            do {
                filters.append(try PreparedFilter(constant: constant, kind: record.kind, dims: record.dims,
                                                  values: raw.bindMemory(to: Float.self), owner: owner))
            } catch {
                throw ArtifactError.corrupt("prepared filter '\(record.key)': \(error)")
            }
        }
        let stored = Set(filters.map(\.constant))
        if let missing = preparedOnly.sorted().first(where: { !stored.contains($0) }) {
            throw ArtifactError.corrupt("constant '\(missing)' is stored prepared only, but no prepared filter holds it")
        }
        return filters
    }

    /// True when the file starts with the .keelc signature (cheap, for choosing a loader).
    public static func isArtifact(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: magic.count)).map { Array($0) == magic } ?? false
    }

    private static func align(_ value: Int, to alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }

    private static func append<T: FixedWidthInteger>(_ data: inout Data, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }


}
