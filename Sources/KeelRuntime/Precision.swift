import KeelKernels

/// The arithmetic of the GEMM-bound layers (conv2d, dense). bf16 rounds their inputs and weights
/// to bfloat16 (nearest even) and accumulates in fp32, on AMX tiles or AVX512_BF16; everything
/// else, and every value between layers, stays fp32. fp32-strict is fp32 without Winograd's
/// transforms: each convolution rounds as a direct one does (as ONNX Runtime's), where Winograd
/// F(4×4) and the 1×k lines round 5–20 times as much; for models that amplify rounding layer
/// after layer (timm's Inception-v4 with random weights: 2.8× the tolerance from ORT with
/// Winograd, 0.56× without), at up to twice the time of their 3×3 and 1×k layers.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32
    case fp32Strict = "fp32-strict"
    case bf16

    /// Whether this CPU has a kernel for it (after any `KEEL_SIMD` narrowing).
    public var isAvailable: Bool { self != .bf16 || BF16Convolution.isAvailable }

    /// Whether convolutions may run on Winograd's transforms.
    public var allowsWinograd: Bool { self != .fp32Strict }

    /// What runs when `self` is asked for: bf16 falls back to fp32 on a CPU without bf16 kernels.
    public var effective: Precision { isAvailable ? self : .fp32 }

    /// The one line saying a bf16 request runs fp32 here, or nil when it runs as asked.
    public var fallbackNote: String? {
        isAvailable ? nil : "--precision bf16: this CPU has neither AMX-BF16 nor AVX512_BF16; running fp32"
    }
}
