import CONNX

/// Owns one message tree unpacked by protobuf-c and frees it when the last reference goes.
/// Tensors that point into the tree's `raw_data` (or typed arrays) hold this object, so weights
/// live exactly once in memory and exactly as long as something uses them.
final class ProtoOwner<Message>: @unchecked Sendable {
    let message: UnsafeMutablePointer<Message>
    private let free: (UnsafeMutablePointer<Message>) -> Void

    init(_ message: UnsafeMutablePointer<Message>, free: @escaping (UnsafeMutablePointer<Message>) -> Void) {
        self.message = message
        self.free = free
    }

    deinit { free(message) }

}

/// The C string protobuf-c stores for an optional string field ("" when absent).
func swiftString(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

/// A protobuf-c repeated field (count + C array) as a Swift sequence of its elements.
func repeated<Element>(_ pointer: UnsafeMutablePointer<Element>?, _ count: Int) -> UnsafeBufferPointer<Element> {
    guard let pointer, count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: pointer, count: count)
}
