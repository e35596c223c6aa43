import KeelIR
import KeelKernels

/// How a conv2d layer runs at one batch size, chosen from its geometry (the batch included:
/// Winograd needs enough tiles), the precision asked for and the kernels this CPU has, and never
/// from what happens to be prepared: every plan of a model makes the same choice for the same
/// batch, and the prepare phase prepares exactly the form that choice reads.
struct ConvolutionChoice: Equatable {
    var algorithm: Conv2DAlgorithm
    var form: PreparedForm
    var kernel: KernelChoice

    /// `storedOnlyInBF16` when the model's file holds the filter in the bf16 form alone.
    /// Throws when such a filter cannot run here. `onlyWinogradAlgorithm` when the filter is held
    /// in one Winograd form alone (`PreparedWeights.onlyWinogradAlgorithm`): a symbolic model
    /// prepared at batch 1 on the small tile keeps it at batch 8, where the large one would
    /// multiply less, rather than keep the filter twice (VGG16's 14×14 layers: 28 MB more); one
    /// prepared at batch 8 on line Winograd keeps it at batch 1, where im2col would run.
    static func choose(_ geometry: Conv2DGeometry, precision: Precision, hasResidual: Bool,
                       storedOnlyInBF16: Bool, onlyWinogradAlgorithm: Conv2DAlgorithm? = nil) throws -> ConvolutionChoice {
        let held = onlyWinogradAlgorithm.flatMap { algorithm -> Conv2DAlgorithm? in
            switch algorithm {
            case .winograd: return WinogradWeights.canRun(geometry) ? algorithm : nil
            case .lineWinograd: return LineWinograd.supports(geometry) ? algorithm : nil
            default: return nil
            }
        }
        var fp32Algorithm = held ?? Conv2D.defaultAlgorithm(for: geometry)
        if !precision.allowsWinograd {
            if held != nil {
                throw PreparationError(reason: "its filter was compiled for Winograd only, which --precision \(precision.rawValue) "
                                       + "does not run; compile the model again with --precision \(precision.rawValue)")
            }
            if case .winograd = fp32Algorithm { fp32Algorithm = .im2colGEMM }
            if case .lineWinograd = fp32Algorithm { fp32Algorithm = .im2colGEMM }
        }
        // A layer with few input channels (an RGB first layer, ViT's patch embedding) runs bf16
        // too, its input split in two bf16 terms (`BF16Convolution.splitsInput`) so pixel values
        // keep about 16 bits. A bf16 request keeps fp32 where that is faster here
        // (`BF16Convolution.isFaster`); a filter held in bf16 only runs bf16.
        let asked = storedOnlyInBF16 || precision == .bf16 && BF16Convolution.isFaster(than: fp32Algorithm, for: geometry)
        let useBF16 = asked && BF16Convolution.supports(geometry) && BF16Convolution.isAvailable
        if storedOnlyInBF16 && !useBF16 {
            throw PreparationError(reason: "its filter was compiled for bf16 only, and this CPU has neither AMX-BF16 nor "
                                   + "AVX512_BF16; compile the model again with --precision fp32")
        }
        if useBF16 {
            return ConvolutionChoice(algorithm: .im2colGEMM, form: .bf16,
                                     kernel: KernelChoice(precision: .bf16, algorithm: BF16Convolution.form(for: geometry),
                                                          kernel: BF16Convolution.instructionSet(for: geometry)))
        }
        let form: PreparedForm
        switch fp32Algorithm {
        case .winograd(let tile): form = tile == .large ? .winograd : .winograd2x2
        case .lineWinograd: form = LineWinograd.span(of: geometry.kernel)?.span == .square ? .squareWinograd : .lineWinograd
        case .pointwise, .im2colGEMM: form = .panels
        case .direct, .depthwise, .grouped: form = .packed
        }
        return ConvolutionChoice(algorithm: fp32Algorithm, form: form,
                                 kernel: .fp32(fp32Algorithm, residual: hasResidual, kernelSize: geometry.kernel))
    }
}

/// How a dense layer runs: bf16 where asked for (or where a compiled file holds the kernel in bf16
/// only) and a kernel runs it, reading the bf16 form; otherwise fp32 on the kernel packed once into
/// the panel GEMM's panels, which replace the original (OpenBLAS multiplies them panel by panel on
/// CPUs without Keel's GEMM).
struct DenseChoice: Equatable {
    var form: PreparedForm
    var kernel: KernelChoice

    /// `geometry`: the layer as the bf16 kernels see it (`BF16Convolution.denseGeometry`). Throws
    /// when a kernel stored in bf16 only cannot run here.
    static func choose(precision: Precision, hasResidual: Bool, geometry: Conv2DGeometry,
                       storedOnlyInBF16: Bool) throws -> DenseChoice {
        if (precision == .bf16 || storedOnlyInBF16) && BF16Convolution.isAvailable {
            return DenseChoice(form: .bf16, kernel: KernelChoice(precision: .bf16, algorithm: "gemm",
                                                                 kernel: BF16Convolution.instructionSet(for: geometry)))
        }
        if storedOnlyInBF16 {
            throw PreparationError(reason: "its kernel was compiled for bf16 only, and this CPU has neither AMX-BF16 nor "
                                   + "AVX512_BF16; compile the model again with --precision fp32")
        }
        return DenseChoice(form: .densePanels, kernel: KernelChoice(precision: .fp32,
                                                                    algorithm: hasResidual ? "gemm+residual" : "gemm",
                                                                    kernel: KernelChoice.fp32GEMMKernel))
    }
}
