import KeelKernels

/// The arithmetic of the GEMM-bound layers (conv2d, dense). bf16 rounds their inputs and weights
/// to bfloat16 (nearest even) and accumulates in fp32, on AMX tiles or AVX512_BF16; everything
/// else, and every value between layers, stays fp32.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16

    /// Whether this CPU has a kernel for it (after any `KEEL_SIMD` narrowing).
    public var isAvailable: Bool { self == .fp32 || BF16Convolution.isAvailable }

    /// What runs when `self` is asked for: bf16 falls back to fp32 on a CPU without bf16 kernels.
    public var effective: Precision { isAvailable ? self : .fp32 }

    /// The one line saying a bf16 request runs fp32 here, or nil when it runs as asked.
    public var fallbackNote: String? {
        isAvailable ? nil : "--precision bf16: this CPU has neither AMX-BF16 nor AVX512_BF16; running fp32"
    }
}
