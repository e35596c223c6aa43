import KeelIR
import KeelKernels

/// The prepare phase: once, when a model is compiled and before any plan is built, every
/// conv2d, dense and batch norm node gets its frozen weights in the form its layer runs (BN
/// folded; filters and dense kernels packed, Winograd-transformed or rounded to bf16 as
/// `ConvolutionChoice` and `DenseChoice` decide) at the batch the context names for a symbolic
/// batch (`ExecutionContext.preparedBatch`; 1 unless the caller knows better), else the fixed one.
///
/// Each filter's original goes as soon as its last reader is prepared. A node whose weights
/// cannot be prepared is left alone: its plan resolves the same layer and reports why against it.
struct WeightPreparation {
    let graph: Graph
    /// Float32 values of the constants the graph keeps (conv filters' originals are in `prepared`).
    let constants: [String: TensorData]
    let prepared: PreparedWeights
    let context: ExecutionContext

    /// Every symbol of the inputs bound to 1, the smallest batch a plan can have.
    static func smallestBinding(of graph: Graph) -> [String: Int] {
        binding(of: graph, batch: 1)
    }

    /// The symbol leading an input's shape bound to `batch`, every other symbol to 1.
    static func binding(of graph: Graph, batch: Int) -> [String: Int] {
        var bindings: [String: Int] = [:]
        for input in graph.inputs {
            for symbol in input.type.shape.symbols where bindings[symbol] == nil { bindings[symbol] = 1 }
        }
        for input in graph.inputs {
            if case .symbol(let symbol) = input.type.shape.dims.first { bindings[symbol] = batch }
        }
        return bindings
    }

    func run() {
        let bindings = Self.binding(of: graph, batch: context.preparedBatch)
        var lastUse: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.presentInputs { lastUse[input] = index }
        }
        for (index, node) in graph.nodes.enumerated() {
            try? prepareWeights(of: node, bindings: bindings)
            for input in node.presentInputs where lastUse[input] == index { prepared.releaseOriginal(input) }
        }
    }

    private func prepareWeights(of node: Node, bindings: [String: Int]) throws {
        func extents(_ index: Int) throws -> [Int] {
            guard index < node.inputs.count, let extents = graph.type(of: node.inputs[index])?.shape.binding(bindings).knownExtents
            else { throw PreparationError(reason: "input \(index) has no concrete shape") }
            return extents
        }
        let kernelContext = KernelContext(threads: context.threads)
        switch node.op {
        case .conv2d:
            let layer = try ConvolutionLayer(node, inputShape: try extents(0), kernelShape: try extents(1),
                                             precision: context.precision, prepared: prepared)
            try prepared.prepare(layer.choice.form, for: layer.source, context: kernelContext)
        case .dense:
            let layer = try DenseLayer(node, inputShape: try extents(0), kernelShape: try extents(1),
                                       precision: context.precision, prepared: prepared)
            try prepared.prepare(layer.choice.form, for: .denseMatrix(layer.matrix),
                                 original: constants[layer.matrix.constant], context: kernelContext)
        case .batchNorm:
            let vectors = try (1...4).map { index -> UnsafeBufferPointer<Float> in
                guard let values = constants[node.inputs[index]]?.floatBuffer else {
                    throw PreparationError(reason: "input \(index) is not a constant")
                }
                return values
            }
            let source = try BatchNormLayer(node, shape: try extents(0)).source(vectors)
            try prepared.prepare(.foldedBatchNorm, for: source, context: kernelContext)
        default:
            return
        }
    }
}

/// A conv2d node at concrete shapes: its geometry in IR and kernel terms, its filter, and how
/// it runs. Lowering and the prepare phase resolve a layer the same way.
struct ConvolutionLayer {
    let geometry: ConvolutionGeometry
    let kernelGeometry: Conv2DGeometry
    let filter: ConvolutionFilter
    let hasResidual: Bool
    let choice: ConvolutionChoice
    var source: WeightSource { .convolutionFilter(filter) }

    init(_ node: Node, inputShape: [Int], kernelShape: [Int], precision: Precision, prepared: PreparedWeights) throws {
        guard node.inputs.count > 1, inputShape.count == 4 else { throw PreparationError(reason: "it has no filter input") }
        geometry = try ConvolutionGeometry.resolve(node, input: Shape(known: inputShape), kernel: Shape(known: kernelShape))
        kernelGeometry = try Conv2DGeometry(geometry, batch: inputShape[0])
        try kernelGeometry.validate()
        filter = ConvolutionFilter(constant: node.inputs[1], layout: geometry.kernelLayout, kernel: kernelGeometry.kernel,
                                   inputChannels: geometry.inputChannels, outputChannels: geometry.outputChannels,
                                   groups: geometry.groups, activations: kernelGeometry.layout)
        hasResidual = node.inputs.count > 3 && !node.inputs[3].isEmpty
        choice = try ConvolutionChoice.choose(kernelGeometry, precision: precision, hasResidual: hasResidual,
                                              storedOnlyInBF16: prepared.heldOnlyInBF16(filter.constant),
                                              onlyWinogradAlgorithm: prepared.onlyWinogradAlgorithm(of: filter.constant))
    }

    /// Whether the kernel can write its output pixels a wider row apart, straight into a
    /// concatenation's slice (`ConcatPlacement`): the NHWC panel and Winograd forms, without a
    /// residual or a fused pool (line and 5×5 Winograd only with no activation or ReLU, which they fuse).
    func writesPixelRows(activation: UnaryOperation) -> Bool {
        guard kernelGeometry.layout == .nhwc, !hasResidual, !geometry.fusedMaxPool else { return false }
        switch choice.form {
        case .panels, .winograd, .winograd2x2: return true
        case .lineWinograd, .squareWinograd: return activation == .identity || activation == .relu
        case .bf16, .packed, .foldedBatchNorm, .densePanels: return false
        }
    }

    /// Whether a fused max pool happens inside the kernel (the Winograd NHWC output pass or the
    /// bf16 direct form's epilogue); elsewhere the full-size output is pooled by a separate pass.
    func poolsInKernel(activation: UnaryOperation) -> Bool {
        choice.form == .bf16
            ? BF16Convolution.poolsInKernel(kernelGeometry) && (activation == .relu || activation == .identity)
                && !hasResidual
            : (choice.form == .winograd || choice.form == .winograd2x2) && kernelGeometry.layout == .nhwc
                && !hasResidual
    }
}

/// A dense node at concrete shapes: its kernel matrix, the rows it multiplies, and how it runs.
struct DenseLayer {
    let matrix: DenseMatrix
    let rows: Int
    let choice: DenseChoice

    init(_ node: Node, inputShape: [Int], kernelShape: [Int], precision: Precision, prepared: PreparedWeights) throws {
        guard node.inputs.count > 1, kernelShape.count == 2 else { throw PreparationError(reason: "its kernel is not a constant matrix") }
        let layout: DenseWeightLayout = try AttributeReader(node: node).string("weight_layout") == "out_in" ? .outIn : .inOut
        let (inFeatures, outFeatures) = layout == .outIn ? (kernelShape[1], kernelShape[0]) : (kernelShape[0], kernelShape[1])
        matrix = DenseMatrix(constant: node.inputs[1], inFeatures: inFeatures, outFeatures: outFeatures, layout: layout)
        rows = inputShape.dropLast().reduce(1, *)
        let hasResidual = node.inputs.count > 3 && !node.inputs[3].isEmpty
        choice = try DenseChoice.choose(precision: precision, hasResidual: hasResidual,
                                        geometry: BF16Convolution.denseGeometry(rows: rows, inFeatures: inFeatures,
                                                                                outFeatures: outFeatures),
                                        storedOnlyInBF16: prepared.bf16Only.contains(node.inputs[1]))
    }
}

/// A batch norm node at a concrete shape: the channel axis and ε its fold needs.
struct BatchNormLayer {
    let node: String
    let axis: Int
    let channels: Int
    let epsilon: Float

    init(_ node: Node, shape: [Int]) throws {
        let attributes = AttributeReader(node: node)
        guard let axis = Shape(known: shape).normalizedAxis(try attributes.int("axis")) else {
            throw PreparationError(reason: "axis is outside \(Shape(known: shape))")
        }
        self.node = node.name
        self.axis = axis
        channels = shape[axis]
        epsilon = try attributes.float("epsilon")
    }

    /// γ, β, μ, σ² in input order.
    func source(_ vectors: [UnsafeBufferPointer<Float>]) -> WeightSource {
        .batchNorm(BatchNormVectors(node: node, gamma: vectors[0], beta: vectors[1], mean: vectors[2], variance: vectors[3],
                                    epsilon: epsilon, channels: channels))
    }
}
