import KeelIR
import KeelKernels

/// What a prepared form is made from: the weight's name (the filter constant, or the batch
/// norm's node) and what its kernel needs to know of its shape.
enum WeightSource {
    case convolutionFilter(ConvolutionFilter)
    case denseMatrix(DenseMatrix)
    case batchNorm(BatchNormVectors)

    /// The cache's name for the weight: a filter constant, or a batch norm's node.
    var name: String {
        switch self {
        case .convolutionFilter(let filter): return filter.constant
        case .denseMatrix(let matrix): return matrix.constant
        case .batchNorm(let vectors): return vectors.node
        }
    }

    func convolutionFilter(for form: PreparedForm) throws -> ConvolutionFilter {
        guard case .convolutionFilter(let filter) = self else { throw cannotPrepare(form) }
        return filter
    }

    func cannotPrepare(_ form: PreparedForm) -> PreparationError {
        PreparationError(reason: "'\(name)' has no \(form.rawValue) form")
    }
}

/// A conv2d filter as the graph stores it.
struct ConvolutionFilter {
    var constant: String
    var layout: KernelLayout
    var kernel: Size2D
    var inputChannels: Int
    var outputChannels: Int
    var groups: Int
    /// The layout of the activations it convolves (which operand of the GEMM the filter is).
    var activations: ActivationLayout
    var inputChannelsPerGroup: Int { inputChannels / max(groups, 1) }
}

/// A dense layer's kernel matrix.
struct DenseMatrix {
    var constant: String
    var inFeatures: Int
    var outFeatures: Int
    var layout: DenseWeightLayout
}

/// A batch norm's four per-channel vectors, read where the graph holds them.
struct BatchNormVectors {
    var node: String
    var gamma, beta, mean, variance: UnsafeBufferPointer<Float>
    var epsilon: Float
    var channels: Int
}

/// Why a weight could not be prepared in the form its layer runs; the lowering reports it
/// against the layer.
struct PreparationError: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// What a preparer may read: the weight's original values while the model still holds them,
/// and the forms of the same weight prepared before.
struct HeldWeights {
    let name: String
    let original: TensorData?
    let forms: [PreparedForm: any PreparedPayload]

    func existing<P: PreparedPayload>(_ type: P.Type) -> P? { forms[P.form] as? P }

    /// The original values; throws once they are released (or were never float32).
    func requireOriginal(for form: PreparedForm) throws -> UnsafeBufferPointer<Float> {
        guard let values = original?.floatBuffer else {
            if forms.isEmpty { throw PreparationError(reason: "its kernel '\(name)' has no float32 values") }
            throw unavailable(form)
        }
        return values
    }

    /// The row-major packing, held as such or as panels; throws when neither is held.
    func rowMajorPacking(for form: PreparedForm) throws -> PackedConv2DWeights {
        if let panels = existing(PanelConv2DWeights.self) { return panels.rowMajor() }
        return try require(PackedConv2DWeights.self, for: form)
    }

    /// Another form to derive from; throws when it is not held either.
    func require<P: PreparedPayload>(_ type: P.Type, for form: PreparedForm) throws -> P {
        if let payload = existing(type) { return payload }
        if original == nil && forms.isEmpty { throw PreparationError(reason: "its kernel '\(name)' has no float32 values") }
        throw unavailable(form)
    }

    private func unavailable(_ form: PreparedForm) -> PreparationError {
        let held = forms.keys.map(\.rawValue).sorted().joined(separator: ", ")
        return PreparationError(reason: "its filter '\(name)' is held only in the \(held) form, which the \(form.rawValue) "
                                + "form cannot be made from; compile the model again")
    }
}
