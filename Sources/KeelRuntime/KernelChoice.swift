import KeelKernels

/// What a step runs: its precision, algorithm and kernel, chosen once from the layer's geometry,
/// the batch and the CPU's capabilities, and reported per node by `keel bench --profile` and
/// `keel compile --json`.
public struct KernelChoice: Sendable, Equatable, Codable {
    public var precision: Precision
    /// "winograd", "im2col", "direct", "pointwise", "gemm"; empty for layers without a choice.
    /// (bf16 "direct" reads tiles straight from a padded bf16 copy of the input.)
    public var algorithm: String
    /// The instruction set or library the products run on: "AMX-BF16", "AVX512_BF16", "AVX-512",
    /// "AVX2", "OpenBLAS", "portable"; empty for layers without a choice.
    public var kernel: String

    public init(precision: Precision, algorithm: String = "", kernel: String = "") {
        self.precision = precision
        self.algorithm = algorithm
        self.kernel = kernel
    }

    /// Element-wise, data-movement and normalisation steps: fp32, one way to run.
    public static let fp32 = KernelChoice(precision: .fp32)

    /// "bf16 im2col AMX-BF16", "fp32 winograd AVX-512", "fp32".
    public var description: String { [precision.rawValue, algorithm, kernel].filter { !$0.isEmpty }.joined(separator: " ") }

    /// The bf16 kernel in the table now.
    static var bf16Kernel: String {
        CPUCapabilities.inUse.contains(.amxBF16) ? "AMX-BF16" : "AVX512_BF16"
    }

    /// An fp32 convolution's kernel: Keel's C for Winograd and direct where present, else OpenBLAS
    /// (im2col, pointwise) or the portable Swift transforms.
    static func fp32(_ algorithm: Conv2DAlgorithm) -> KernelChoice {
        let widest = CPUCapabilities.inUse.contains(.avx512) ? "AVX-512" : CPUCapabilities.inUse.contains(.avx2) ? "AVX2" : ""
        switch algorithm {
        case .winograd: return KernelChoice(precision: .fp32, algorithm: "winograd", kernel: widest.isEmpty ? "portable" : widest)
        case .direct: return KernelChoice(precision: .fp32, algorithm: "direct", kernel: widest.isEmpty ? "OpenBLAS" : widest)
        case .im2colGEMM: return KernelChoice(precision: .fp32, algorithm: "im2col", kernel: "OpenBLAS")
        case .pointwise: return KernelChoice(precision: .fp32, algorithm: "pointwise", kernel: "OpenBLAS")
        }
    }
}
