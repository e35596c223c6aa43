import KeelKernels

/// A conv filter in the form its kernel runs from (transformed for Winograd or packed for the
/// GEMM), so a compiled model file can carry it and a run need not prepare it again.
public struct PreparedFilter: Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case winograd
        case packed
        /// Rounded to bf16 and packed for the bf16 kernels (`--precision bf16`).
        case bf16
    }

    public enum Weights: Sendable {
        case winograd(WinogradWeights)
        case packed(PackedConv2DWeights)
        case bf16(BF16Weights)
    }

    public let weights: Weights
    /// The filter constant these weights were prepared from.
    public let constant: String

    public init(constant: String, weights: Weights) {
        self.constant = constant
        self.weights = weights
    }

    /// As the runtime's prepared weights are keyed: "winograd:<kernel>", "conv:<kernel>" or "bf16:<kernel>".
    public var key: String { Self.key(kind, constant) }

    static func key(_ kind: Kind, _ constant: String) -> String {
        switch kind {
        case .winograd: return "winograd:" + constant
        case .packed: return "conv:" + constant
        case .bf16: return "bf16:" + constant
        }
    }

    /// Where the runtime keeps a filter packed into the panel GEMM's layout for `layout`
    /// activations (`PanelConv2DWeights`). Not a file form: files store the row-major packing,
    /// which it is rebuilt from.
    static func panelKey(_ constant: String, layout: ActivationLayout) -> String {
        "panels-\(layout):" + constant
    }

    public var kind: Kind {
        switch weights {
        case .winograd: return .winograd
        case .packed: return .packed
        case .bf16: return .bf16
        }
    }

    /// What rebuilding the weights takes: Winograd [inputChannels, outputChannels]; packed
    /// [kernelHeight, kernelWidth, inputChannelsPerGroup, outputChannels, groups]; bf16 [depth, columns].
    public var dims: [Int] {
        switch weights {
        case .winograd(let w): return [w.inputChannels, w.outputChannels]
        case .packed(let p): return [p.kernel.height, p.kernel.width, p.inputChannelsPerGroup, p.outputChannels, p.groups]
        case .bf16(let b): return [b.depth, b.columns]
        }
    }

    public func withUnsafeValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch weights {
        case .winograd(let w): return try w.withUnsafeValues(body)
        case .packed(let p): return try p.withUnsafeValues(body)
        case .bf16(let b): return try b.withUnsafeSlots(body)
        }
    }

    /// Borrows `values` (kept alive by `owner`); throws `KernelError` when they do not fit `dims`.
    init(constant: String, kind: Kind, dims: [Int], values: UnsafeBufferPointer<Float>, owner: AnyObject) throws {
        self.constant = constant
        switch kind {
        case .winograd:
            guard dims.count == 2 else {
                throw KernelError.invalidArgument(kernel: "winograd weights", message: "dims \(dims) are not [inputs, outputs]")
            }
            weights = .winograd(try WinogradWeights(borrowing: values, owner: owner, inputChannels: dims[0], outputChannels: dims[1]))
        case .packed:
            guard dims.count == 5 else {
                throw KernelError.invalidArgument(kernel: "conv2d weights",
                                                  message: "dims \(dims) are not [kernel height, kernel width, inputs per group, outputs, groups]")
            }
            weights = .packed(try PackedConv2DWeights(borrowing: values, owner: owner, kernel: Size2D(dims[0], dims[1]),
                                                      inputChannelsPerGroup: dims[2], outputChannels: dims[3], groups: dims[4]))
        case .bf16:
            guard dims.count == 2 else {
                throw KernelError.invalidArgument(kernel: "bf16 weights", message: "dims \(dims) are not [depth, columns]")
            }
            weights = .bf16(try BF16Weights(borrowing: values, owner: owner, depth: dims[0], columns: dims[1]))
        }
    }

    /// The prepared value as the runtime stores it under `key`.
    var entry: Any {
        switch weights {
        case .winograd(let w): return w
        case .packed(let p): return p
        case .bf16(let b): return b
        }
    }
}
