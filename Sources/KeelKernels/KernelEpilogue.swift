/// The epilogue C kernels fuse (CSIMDKernels/keel_epilogue.h): bias, then a residual tensor of
/// the output's shape (a ResNet or MobileNet shortcut), then an activation, applied in registers
/// before each output value's one store. Activations the C code lacks (ELU, softplus, …) run as one
/// pass afterwards, still after bias and residual.
import CSIMDKernels

struct KernelEpilogue {
    var bias: UnsafePointer<Float>?
    var residual: UnsafePointer<Float>?
    var activation: UnaryOperation

    /// The C form of `activation`, or nil when it has none.
    static func fusedActivation(_ activation: UnaryOperation) -> (keel_activation, Float, Float)? {
        switch activation {
        case .identity: return (KEEL_ACTIVATION_NONE, 0, 0)
        case .relu: return (KEEL_ACTIVATION_RELU, 0, 0)
        case let .clip(lower, upper): return (KEEL_ACTIVATION_CLIP, lower, upper)
        case let .leakyRelu(alpha): return (KEEL_ACTIVATION_LEAKY_RELU, alpha, 0)
        case .sigmoid: return (KEEL_ACTIVATION_SIGMOID, 0, 0)
        case .swish: return (KEEL_ACTIVATION_SWISH, 0, 0)
        case let .hardSigmoid(alpha, beta): return (KEEL_ACTIVATION_HARD_SIGMOID, alpha, beta)
        case .hardSwish: return (KEEL_ACTIVATION_HARD_SWISH, 0, 0)
        case .tanh: return (KEEL_ACTIVATION_TANH, 0, 0)
        case .gelu: return (KEEL_ACTIVATION_GELU, 0, 0)
        case .geluTanh: return (KEEL_ACTIVATION_GELU_TANH, 0, 0)
        default: return nil
        }
    }

    /// The activation left for a separate pass after the kernel (identity when it fused all).
    var remainingActivation: UnaryOperation {
        Self.fusedActivation(activation) == nil ? activation : .identity
    }

    /// The C description; `biasPerRow` when channels are the output block's rows (NCHW GEMMs).
    func description(biasPerRow: Bool = false, residualStride: Int = 0) -> keel_epilogue {
        let (kind, first, second) = Self.fusedActivation(activation) ?? (KEEL_ACTIVATION_NONE, 0, 0)
        return keel_epilogue(bias: bias, bias_per_row: biasPerRow ? 1 : 0, residual: residual,
                             residual_stride: residualStride, activation: kind, parameter0: first, parameter1: second)
    }
}

/// output = activation(output + residual) elementwise over `count` values: the residual and
/// activation of a convolution whose kernel fused only its bias (Winograd, direct).
func applyResidual(_ residual: UnsafePointer<Float>?, activation: UnaryOperation, to output: UnsafeMutablePointer<Float>,
                   count: Int, context: KernelContext) {
    if let residual {
        context.forEachChunk(count, minimumChunk: parallelGrain) { range in
            for index in range { output[index] += residual[index] }
        }
    }
    applyEpilogue(OutputBlock(base: output, rows: 1, columns: count, rowStride: count), bias: nil,
                  direction: .perColumn, activation: activation, context: context)
}
