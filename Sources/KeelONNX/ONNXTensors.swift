import CONNX
import KeelIR
#if canImport(Glibc)
import Glibc
#endif

/// What reading a tensor needs besides the message: the file for messages and the folder
/// external data is relative to.
struct TensorReadContext {
    let path: String
    let externalFiles: ExternalDataFiles

    init(path: String, confinement: PathConfinement = PathConfinement()) {
        self.path = path
        self.externalFiles = ExternalDataFiles(modelPath: path, confinement: confinement)
    }
}

/// Converts a TensorProto into `TensorData`. `raw_data` and the typed arrays that already hold
/// Keel's byte layout are viewed in place (the storage retains `owner`, the parsed tree);
/// float16 and bool stored as int32 are converted; external data is memory-mapped. `weights`
/// holds the raw_data `WireFormatScan` left in the model file (graph initializers only).
func readTensor(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, owner: AnyObject,
                context: TensorReadContext, weights: MappedWeights? = nil) throws -> TensorData {
    let tensor = proto.pointee
    let name = swiftString(tensor.name)
    let code = tensor.has_data_type != 0 ? Int(tensor.data_type) : 0
    guard let dtype = dtypeForONNX(code) else {
        throw ONNXError.unsupportedDType(path: context.path, name: name, dataType: code)
    }
    var shape: [Int] = []
    var count = 1
    for extent in repeated(tensor.dims, tensor.n_dims) {
        guard extent >= 0, extent <= Int64(Int32.max) else {
            throw ONNXError.invalidTensor(path: context.path, name: name, reason: "invalid dimension \(extent)")
        }
        let (product, overflow) = count.multipliedReportingOverflow(by: Int(extent))
        guard !overflow, product <= Int.max / 8 else {
            throw ONNXError.invalidTensor(path: context.path, name: name, reason: "too many elements")
        }
        shape.append(Int(extent))
        count = product
    }
    let byteCount = count * dtype.byteSize
    let typeText = "\(dtype.rawValue)\(Shape(known: shape))"
    func make(_ storage: TensorStorage) -> TensorData { TensorData(dtype: dtype, shape: shape, storage: storage) }

    if tensor.segment != nil {
        throw ONNXError.invalidTensor(path: context.path, name: name, reason: "segmented tensors are not supported")
    }
    if tensor.has_data_location != 0 && tensor.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
        var entries: [String: String] = [:]
        for entry in repeated(tensor.external_data, tensor.n_external_data) {
            guard let entry else { continue }
            entries[swiftString(entry.pointee.key)] = swiftString(entry.pointee.value)
        }
        let storage = try context.externalFiles.storage(tensor: name, entries: entries, byteCount: byteCount,
                                                        alignment: dtype.byteSize)
        return make(storage)
    }
    func checkRawData(_ length: Int) throws {
        guard length == byteCount else {
            throw ONNXError.invalidTensor(path: context.path, name: name,
                                          reason: "raw_data holds \(formatCount(length)) bytes but \(typeText) needs \(formatCount(byteCount))")
        }
    }
    if let weights, let span = weights.span(of: tensor) {
        try checkRawData(span.count)
        return make(weights.storage(span, alignment: dtype.byteSize))
    }
    if tensor.has_raw_data != 0 {
        let raw = tensor.raw_data
        try checkRawData(raw.len)
        return make(viewOrCopy(UnsafeRawPointer(raw.data), byteCount: byteCount, alignment: dtype.byteSize, owner: owner))
    }

    /// Checks a typed field holds exactly one value per element.
    func typedField(_ field: String, _ found: Int) throws {
        guard found == count else {
            let reason = found == 0 && count > 0
                ? "no data for \(typeText) (no raw_data, \(field) or external data)"
                : "\(field) holds \(formatCount(found)) values but \(typeText) needs \(formatCount(count))"
            throw ONNXError.invalidTensor(path: context.path, name: name, reason: reason)
        }
    }
    switch dtype {
    case .float32:
        try typedField("float_data", tensor.n_float_data)
        return make(viewOrCopy(UnsafeRawPointer(tensor.float_data), byteCount: byteCount, alignment: 4, owner: owner))
    case .float64:
        try typedField("double_data", tensor.n_double_data)
        return make(viewOrCopy(UnsafeRawPointer(tensor.double_data), byteCount: byteCount, alignment: 8, owner: owner))
    case .int64:
        try typedField("int64_data", tensor.n_int64_data)
        return make(viewOrCopy(UnsafeRawPointer(tensor.int64_data), byteCount: byteCount, alignment: 8, owner: owner))
    case .int32:
        try typedField("int32_data", tensor.n_int32_data)
        return make(viewOrCopy(UnsafeRawPointer(tensor.int32_data), byteCount: byteCount, alignment: 4, owner: owner))
    case .float16:
        // ONNX stores each half as the low 16 bits of an int32.
        try typedField("int32_data", tensor.n_int32_data)
        let halves = repeated(tensor.int32_data, tensor.n_int32_data).map { UInt16(truncatingIfNeeded: $0) }
        return make(TensorStorage(copying: halves))
    case .bool:
        try typedField("int32_data", tensor.n_int32_data)
        let flags = repeated(tensor.int32_data, tensor.n_int32_data).map { UInt8($0 != 0 ? 1 : 0) }
        return make(TensorStorage(copying: flags))
    }
}

/// Storage over bytes `owner` keeps alive; copied only when misaligned for the element type,
/// since Keel's kernels and `TensorData` load elements with natural alignment.
/// When the storage goes, so do the pages of its bytes: nothing else reads them, and a model
/// whose conv filters are released one by one once prepared should not keep the parsed file's
/// copy of them resident until the last one goes.
func viewOrCopy(_ start: UnsafeRawPointer?, byteCount: Int, alignment: Int, owner: AnyObject) -> TensorStorage {
    guard byteCount > 0, let start else { return TensorStorage(copying: [UInt8]()) }
    if Int(bitPattern: start) % max(alignment, 1) == 0 {
        return TensorStorage(bytes: UnsafeRawBufferPointer(start: start, count: byteCount),
                             release: { withExtendedLifetime(owner) { discardPages(start, byteCount: byteCount) } })
    }
    let copy = Array(UnsafeRawBufferPointer(start: start, count: byteCount))
    return TensorStorage(copying: copy)
}

/// Reads a serialized `onnx.TensorProto` (the conformance suite's `input_N.pb` files).
/// External data, if any, is resolved relative to the file's folder.
public func loadTensorProto(path: String) throws -> TensorData {
    let file = try mapONNXFile(path)
    guard let message = onnx__tensor_proto__unpack(nil, file.bytes.count,
                                                    file.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)) else {
        throw ONNXError.malformed(path: path, what: "ONNX TensorProto")
    }
    let owner = ProtoOwner(message) { onnx__tensor_proto__free_unpacked($0, nil) }
    return try readTensor(owner.message, owner: owner, context: TensorReadContext(path: path))
}

/// Gives the whole pages inside `start..<start + byteCount` back to the system. The memory stays
/// allocated (its owner frees it later); touched again, an anonymous page reads as zeros and a
/// file page is read from the file again, so only bytes no one will read may be discarded.
/// Allocator headers and neighbouring tensors around them lie outside the whole pages.
func discardPages(_ start: UnsafeRawPointer, byteCount: Int) {
    #if os(Linux)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard page > 0 else { return }
    let first = (Int(bitPattern: start) + page - 1) / page * page
    let end = (Int(bitPattern: start) + byteCount) / page * page
    guard end > first, let address = UnsafeMutableRawPointer(bitPattern: first) else { return }
    _ = madvise(address, end - first, Int32(MADV_DONTNEED))
    #endif
}
