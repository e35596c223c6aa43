import Foundation

/// Immutable bytes of a constant tensor. The storage is shared, so copying a Constant (and the
/// Graph around it) never copies weights; memory-mapped ONNX weights stay mapped.
public final class TensorStorage: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let release: (() -> Void)?

    /// Takes ownership of `bytes`; `release` runs when the storage goes away (munmap, free).
    public init(bytes: UnsafeRawBufferPointer, release: (() -> Void)?) {
        self.bytes = bytes
        self.release = release
    }

    /// Copies `array` into freshly allocated, 64-byte-aligned memory.
    public convenience init<Element>(copying array: [Element]) {
        let count = array.count * MemoryLayout<Element>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1), alignment: 64)
        array.withUnsafeBytes { source in
            if let base = source.baseAddress { raw.copyMemory(from: base, byteCount: count) }
        }
        self.init(bytes: UnsafeRawBufferPointer(start: raw, count: count), release: { raw.deallocate() })
    }

    deinit { release?() }
}

/// The value of a constant: a dtype, a fully known shape and its bytes (little-endian, C order).
public struct TensorData: Hashable, Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage

    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    public init(floats: [Float], shape: [Int]) {
        self.init(dtype: .float32, shape: shape, storage: TensorStorage(copying: floats))
    }

    /// Float32 values written straight into the storage: building an array first and copying it
    /// would hold a large weight (a 400 MB classifier kernel) twice more while a pass rewrites it.
    public init(float32Shape shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count * 4, 1), alignment: 64)
        let values = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
        fill(UnsafeMutableBufferPointer(start: values, count: count))
        self.init(dtype: .float32, shape: shape,
                  storage: TensorStorage(bytes: UnsafeRawBufferPointer(start: raw, count: count * 4), release: { raw.deallocate() }))
    }

    public init(int64s: [Int64], shape: [Int]) {
        self.init(dtype: .int64, shape: shape, storage: TensorStorage(copying: int64s))
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// Float32 view of the bytes; nil for other dtypes.
    public var floatBuffer: UnsafeBufferPointer<Float>? {
        guard dtype == .float32 else { return nil }
        return UnsafeBufferPointer(start: storage.bytes.baseAddress?.assumingMemoryBound(to: Float.self), count: elementCount)
    }

    /// The values as Floats, converting from any numeric dtype (for folding and tests).
    public func floats() -> [Float] {
        let bytes = storage.bytes
        let count = elementCount
        switch dtype {
        case .float32: return (0..<count).map { bytes.load(fromByteOffset: $0 * 4, as: Float.self) }
        case .float64: return (0..<count).map { Float(bytes.load(fromByteOffset: $0 * 8, as: Double.self)) }
        case .int32: return (0..<count).map { Float(bytes.load(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .int64: return (0..<count).map { Float(bytes.load(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .bool: return (0..<count).map { Float(bytes[$0]) }
        case .float16:
            #if arch(x86_64) || arch(arm64)
            return (0..<count).map { Float(Float16(bitPattern: bytes.load(fromByteOffset: $0 * 2, as: UInt16.self))) }
            #else
            return []
            #endif
        }
    }

    /// The values as Int64s, converting from any integer or float dtype (for shape arithmetic).
    public func int64s() -> [Int64] {
        let bytes = storage.bytes
        let count = elementCount
        switch dtype {
        case .int64: return (0..<count).map { bytes.load(fromByteOffset: $0 * 8, as: Int64.self) }
        case .int32: return (0..<count).map { Int64(bytes.load(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .bool: return (0..<count).map { Int64(bytes[$0]) }
        default: return floats().map { Int64($0) }
        }
    }

    public static func == (lhs: TensorData, rhs: TensorData) -> Bool {
        lhs.dtype == rhs.dtype && lhs.shape == rhs.shape && lhs.storage === rhs.storage
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(dtype)
        hasher.combine(shape)
        hasher.combine(ObjectIdentifier(storage))
    }
}
