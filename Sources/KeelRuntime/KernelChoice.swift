import KeelKernels

/// What a step runs: its precision, algorithm and kernel, chosen once from the layer's geometry,
/// the batch and the CPU's capabilities, and reported per node by `keel bench --profile` and
/// `keel compile --json`.
public struct KernelChoice: Sendable, Equatable, Codable {
    public var precision: Precision
    /// "winograd" (F(4×4, 3×3)), "winograd2x2", "line_winograd" (F(4, k) for 1×k and k×1), "im2col", "direct", "depthwise", "grouped",
    /// "pointwise", "gemm"; empty for layers without a choice. (fp32 NHWC "im2col" reads the input
    /// in place where the output is at least 32 columns wide, copying only the pixels at its border.)
    /// (bf16 "direct" reads tiles straight from a padded bf16 copy of the input.)
    public var algorithm: String
    /// The instruction set or library the products run on: "AMX-BF16", "AVX512_BF16", "AVX-512",
    /// "AVX2", "OpenBLAS", "portable"; empty for layers without a choice.
    public var kernel: String
    /// How the step stores its output: bf16 where only bf16 layers read it (`ActivationStorageRule`).
    public var output: ActivationStorage

    public init(precision: Precision, algorithm: String = "", kernel: String = "", output: ActivationStorage = .fp32) {
        self.precision = precision
        self.algorithm = algorithm
        self.kernel = kernel
        self.output = output
    }

    /// Element-wise, data-movement and normalisation steps: fp32, one way to run.
    public static let fp32 = KernelChoice(precision: .fp32)

    /// "bf16 im2col AMX-BF16", "fp32 winograd AVX-512", "fp32"; "…, bf16 out" for a bf16 output.
    public var description: String {
        [precision.rawValue, algorithm, kernel].filter { !$0.isEmpty }.joined(separator: " ")
            + (output == .bf16 ? ", bf16 out" : "")
    }

    /// The widest fp32 ISA in the kernel table now, or "" for none.
    static var widestFP32: String {
        CPUCapabilities.inUse.contains(.avx512) ? "AVX-512" : CPUCapabilities.inUse.contains(.avx2) ? "AVX2" : ""
    }

    /// The kernel of an fp32 product: Keel's panel GEMM where present, else OpenBLAS.
    static var fp32GEMMKernel: String { PanelGEMM.isPresent ? widestFP32 : "OpenBLAS" }

    /// An fp32 convolution's kernel: Keel's C for every algorithm where present, else OpenBLAS
    /// (im2col, pointwise, and direct and depthwise, which fall back to im2col) or the portable
    /// Swift transforms (every Winograd). `residual` when the step adds a fused shortcut;
    /// `kernelSize` names the tiles F(4, k) takes along both axes of a square filter.
    static func fp32(_ algorithm: Conv2DAlgorithm, residual: Bool = false, kernelSize: Size2D? = nil) -> KernelChoice {
        let widest = widestFP32
        let name: String, kernel: String
        switch algorithm {
        case .winograd(let tile):
            (name, kernel) = (tile == .large ? "winograd" : "winograd2x2", widest.isEmpty ? "portable" : widest)
        case .lineWinograd:
            let squareSide = kernelSize.flatMap { LineWinograd.span(of: $0)?.span == .square ? $0.width : nil }
            (name, kernel) = (squareSide.map { "winograd\($0)x\($0)" } ?? "line_winograd", widest.isEmpty ? "portable" : widest)
        case .direct: (name, kernel) = ("direct", widest.isEmpty ? "OpenBLAS" : widest)
        case .depthwise: (name, kernel) = ("depthwise", widest.isEmpty ? "OpenBLAS" : widest)
        case .grouped: (name, kernel) = ("grouped", widest.isEmpty ? "OpenBLAS" : widest)
        case .im2colGEMM: (name, kernel) = ("im2col", fp32GEMMKernel)
        case .pointwise: (name, kernel) = ("pointwise", fp32GEMMKernel)
        }
        return KernelChoice(precision: .fp32, algorithm: name + (residual ? "+residual" : ""), kernel: kernel)
    }
}
