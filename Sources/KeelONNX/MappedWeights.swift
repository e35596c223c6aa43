import CONNX
import KeelIR

/// The initializer weights `WireFormatScan` left in the model file's mapping. Tensors view them
/// there (the storage keeps the mapping alive and gives its pages back when it goes); weights
/// whose file offset is misaligned for their element type are copied out instead, since
/// protobuf places `raw_data` at any byte.
struct MappedWeights {
    let file: MappedFile
    let spans: [RawDataSpan]
    /// Pages copied before the file's pages behind them are given back, so a copy never holds
    /// the whole tensor twice.
    static let copyChunk = 1 << 20

    /// The span a tensor's marker names, or nil when the tensor kept its `raw_data` in the
    /// message (no marker, or a marker naming no span).
    func span(of tensor: Onnx__TensorProto) -> RawDataSpan? {
        let marker = UInt32(WireFormatScan.spanMarkerField)
        for field in repeated(tensor.base.unknown_fields, Int(tensor.base.n_unknown_fields))
        where field.tag == marker && field.wire_type == PROTOBUF_C_WIRE_TYPE_VARINT {
            guard let data = field.data,
                  let index = WireFormatScan.spanIndex(markerBytes: UnsafeRawBufferPointer(start: data, count: field.len)),
                  index < spans.count else { return nil }
            let span = spans[index]
            guard span.offset >= 0, span.count >= 0, span.offset <= file.bytes.count,
                  span.count <= file.bytes.count - span.offset else { return nil }
            return span
        }
        return nil
    }

    func storage(_ span: RawDataSpan, alignment: Int) -> TensorStorage {
        guard span.count > 0, let base = file.bytes.baseAddress else { return TensorStorage(copying: [UInt8]()) }
        let start = base + span.offset
        if Int(bitPattern: start) % max(alignment, 1) == 0 {
            return viewOrCopy(start, byteCount: span.count, alignment: alignment, owner: file)
        }
        return copyReleasingSource(start, byteCount: span.count)
    }

    /// Copies into a block of `ParseAllocator` (mapped with all pages present when large),
    /// dropping the file's pages behind each chunk once copied: nothing else reads them.
    private func copyReleasingSource(_ start: UnsafeRawPointer, byteCount: Int) -> TensorStorage {
        guard let block = ParseAllocator.allocate(byteCount) else {
            return TensorStorage(copying: Array(UnsafeRawBufferPointer(start: start, count: byteCount)))
        }
        var copied = 0
        while copied < byteCount {
            let count = min(Self.copyChunk, byteCount - copied)
            (block + copied).copyMemory(from: start + copied, byteCount: count)
            discardPages(start + copied, byteCount: count)
            copied += count
        }
        // The pages straddling chunk boundaries.
        discardPages(start, byteCount: byteCount)
        return TensorStorage(bytes: UnsafeRawBufferPointer(start: block, count: byteCount),
                             release: { ParseAllocator.release(block) })
    }
}
