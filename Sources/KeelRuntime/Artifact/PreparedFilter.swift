import KeelKernels

/// A conv or dense filter in a prepared form (see `PreparedForm`), as a compiled model file
/// carries it, so a run need not prepare it again.
public struct PreparedFilter: Sendable {
    public typealias Kind = PreparedForm

    let payload: any PreparedPayload
    /// The filter constant these weights were prepared from.
    public let constant: String

    init(constant: String, payload: any PreparedPayload) {
        self.constant = constant
        self.payload = payload
    }

    /// As the runtime's prepared weights are keyed: "winograd:<kernel>", "winograd2x2:<kernel>",
    /// "conv:<kernel>" or "bf16:<kernel>".
    public var key: String { kind.key(constant) }

    public var kind: Kind { type(of: payload).form }

    /// What rebuilding the weights takes: Winograd [inputChannels, outputChannels]; packed
    /// [kernelHeight, kernelWidth, inputChannelsPerGroup, outputChannels, groups]; bf16 [depth, columns].
    public var dims: [Int] { payload.storedDims }

    public func withUnsafeValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try payload.withUnsafeStoredValues(body)
    }

    /// Borrows `values` (kept alive by `owner`); throws `KernelError` when they do not fit `dims`,
    /// or when files do not store `kind`.
    init(constant: String, kind: Kind, dims: [Int], values: UnsafeBufferPointer<Float>, owner: AnyObject) throws {
        guard kind.isStored else {
            throw KernelError.invalidArgument(kernel: kind.rawValue, message: "this form is not stored in compiled model files")
        }
        self.constant = constant
        self.payload = try kind.payloadType.init(borrowing: values, owner: owner, storedDims: dims)
    }
}
