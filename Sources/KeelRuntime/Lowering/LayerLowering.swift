import KeelIR
import KeelKernels

/// conv2d, conv_transpose, dense and matmul: the GEMM-bound layers. Their weights come prepared (`WeightPreparation`).
extension KernelLowering {
    static func lowerConvolution(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        guard let kernelName = node.inputs.dropFirst().first, operands.isConstant(kernelName) else {
            throw operands.unsupported("its kernel is not a constant; only constant filters are supported")
        }
        // An NCHW input read by a direct NHWC convolution (`InputLayoutFusion`) has the shape it
        // would have had after the transpose, as far as the layer is concerned.
        // A depthwise layer that computes its expansion (`ExpansionFusion`) reads the expansion's input
        // but is the layer of the expanded tensor.
        let inputShape = operands.expansion?.outputShape ?? (operands.readsChannelsFirst
            ? InputLayoutFusion.convolutionInputShape(ofChannelsFirst: operands.inputShapes[0]) : operands.inputShapes[0])
        let layer = try operands.reportingAgainstNode {
            try ConvolutionLayer(node, inputShape: inputShape, kernelShape: operands.inputShapes[1],
                                 precision: operands.context.precision, prepared: operands.prepared)
        }
        let (geometry, kernelGeometry, choice) = (layer.geometry, layer.kernelGeometry, layer.choice)
        let algorithm = choice.algorithm
        guard (operands.prologue == nil && operands.inputScales == nil) || choice.form == .panels
                || (operands.prologue == nil && choice.form == .bf16) else {
            throw operands.unsupported("an input prologue or gate needs the panel GEMM form, not \(choice.form.rawValue)")
        }
        let inputLayout: ActivationLayout = operands.readsChannelsFirst ? .nchw : kernelGeometry.layout
        guard inputLayout == kernelGeometry.layout || (choice.form == .packed && algorithm == .direct) else {
            throw operands.unsupported("only the direct algorithm reads an NCHW input, not \(choice.kernel.algorithm)")
        }
        let (activation, softmax) = try operands.node.fusedActivation.kernelEpilogue
        guard !softmax else { throw operands.unsupported("conv2d has no softmax epilogue") }
        // A slice of a concatenation's buffer (`ConcatPlacement`): output pixels a wider row apart.
        let outputPixelStride = operands.outputRows.first.flatMap { $0?.stride }
        guard outputPixelStride == nil || layer.writesPixelRows(activation: activation) else {
            throw operands.unsupported("its \(choice.kernel.algorithm) form cannot write into a concatenation's slice")
        }
        let input = try operands.input(0)
        let bias = try operands.optionalInput(2)
        let residual = try operands.optionalInput(3)
        let output = try operands.output()
        let context = operands.kernelContext
        let macs = Double(geometry.macsPerImage) * Double(kernelGeometry.batch)
        let useBF16 = choice.form == .bf16
        var scratchSize = useBF16 ? BF16Convolution.scratchSize(for: kernelGeometry, threads: context.threads)
            : Conv2D.scratchSize(for: kernelGeometry, algorithm: algorithm, threads: context.threads,
                                 inputLayout: inputLayout)
        // Elsewhere than in the kernel, the full-size output goes to scratch and is pooled from there.
        let poolsInKernel = layer.poolsInKernel(activation: activation)
        let separatePool = geometry.fusedMaxPool && !poolsInKernel
        let convolutionScratch = scratchSize
        if separatePool { scratchSize += kernelGeometry.outputElementCount }
        // A batch_norm applied as the input is packed (`BatchNormPrologue`) shows in the profile.
        var kernelChoice = choice.kernel
        if operands.prologue != nil { kernelChoice.algorithm += "+batch_norm" }
        // So does a squeeze-excitation gate applied to the filter (`ChannelScaleFusion`), and an
        // NCHW input read as is (`InputLayoutFusion`).
        if operands.inputScales != nil { kernelChoice.algorithm += "+gate" }
        if operands.readsChannelsFirst { kernelChoice.algorithm += "+nchw_input" }
        if outputPixelStride != nil { kernelChoice.algorithm += "+into_concat" }
        let poolGeometry = Pool2DGeometry(
            batch: kernelGeometry.batch, channels: kernelGeometry.outputChannels, input: kernelGeometry.output,
            output: Size2D(kernelGeometry.output.height / 2, kernelGeometry.output.width / 2), window: Size2D(2, 2),
            stride: Size2D(2, 2), layout: kernelGeometry.layout)
        /// Runs `convolve` into `output`, or into scratch followed by the pool.
        func convolving(_ convolve: @escaping (_ output: UnsafeMutableBufferPointer<Float>,
                                               _ scratch: UnsafeMutableBufferPointer<Float>) throws -> Void) -> Step {
            Step(node: node.name, op: node.op, flops: 2 * macs, scratchSize: scratchSize, choice: kernelChoice) { scratch in
                guard separatePool else { return try convolve(output, scratch) }
                let full = UnsafeMutableBufferPointer(rebasing: scratch[convolutionScratch...])
                try convolve(full, UnsafeMutableBufferPointer(rebasing: scratch[..<convolutionScratch]))
                try Pooling.maxPool(input: UnsafeBufferPointer(full), output: output, geometry: poolGeometry,
                                    context: context)
            }
        }
        func weights<P: PreparedPayload>(_ type: P.Type) throws -> P {
            try operands.reportingAgainstNode { try operands.prepared.payload(type, for: layer.source, context: context) }
        }
        switch choice.form {
        case .bf16:
            let weights = try weights(BF16Weights.self)
            let pooled = geometry.fusedMaxPool && poolsInKernel
            if operands.inputScales != nil { scratchSize += BF16Convolution.inputScaleScratchSize(for: kernelGeometry) }
            return convolving { output, scratch in
                try BF16Convolution.apply(input: input, weights: weights, bias: bias, residual: residual,
                                          activation: activation, output: output, geometry: kernelGeometry,
                                          scratch: scratch, maxPooled: pooled, inputStorage: operands.inputStorage[0],
                                          outputStorage: operands.outputStorage[0],
                                          residualStorage: operands.storage(ofInput: 3),
                                          inputScales: operands.inputScales, context: context)
            }
        case .winograd, .winograd2x2:
            let transformed = choice.form == .winograd ? try weights(WinogradWeights.self)
                : try weights(SmallTileWinogradWeights.self).weights
            let pooled = geometry.fusedMaxPool && poolsInKernel
            return convolving { output, scratch in
                try Conv2D.apply(input: input, weights: transformed, bias: bias, residual: residual, activation: activation,
                                 output: output, geometry: kernelGeometry, scratch: scratch, maxPooled: pooled,
                                 outputPixelStride: outputPixelStride, context: context)
            }
        case .lineWinograd, .squareWinograd:
            let transformed = choice.form == .lineWinograd ? try weights(LineWinogradWeights.self)
                : try weights(SquareWinogradWeights.self).weights
            return convolving { output, scratch in
                try Conv2D.apply(input: input, weights: transformed, bias: bias, residual: residual, activation: activation,
                                 output: output, geometry: kernelGeometry, scratch: scratch,
                                 outputPixelStride: outputPixelStride, context: context)
            }
        case .panels:
            let panels = try weights(PanelConv2DWeights.self)
            if operands.inputScales != nil { scratchSize += panels.inputScaleScratchSize }
            return convolving { output, scratch in
                try Conv2D.apply(input: input, weights: panels, bias: bias, residual: residual, activation: activation,
                                 output: output, geometry: kernelGeometry, scratch: scratch, algorithm: algorithm,
                                 prologue: operands.prologue, inputScales: operands.inputScales,
                                 outputPixelStride: outputPixelStride, context: context)
            }
        case .foldedBatchNorm, .densePanels:
            throw operands.unsupported("a convolution has no \(choice.form.rawValue) form")
        case .packed:
            let packed = try weights(PackedConv2DWeights.self)
            if let expansion = operands.expansion {
                guard algorithm == .depthwise, operands.inputStorage[0] == .fp32, operands.outputStorage[0] == .fp32,
                      outputPixelStride == nil, !geometry.fusedMaxPool else {
                    throw operands.unsupported("a fused expansion needs an fp32 depthwise layer writing its own buffer")
                }
                kernelChoice.algorithm = "expansion+" + kernelChoice.algorithm
                let fusedScratch = ExpandedDepthwiseConvolution.scratchSize(for: kernelGeometry, threads: context.threads)
                return Step(node: node.name, op: node.op, flops: 2 * macs + expansion.flops, scratchSize: fusedScratch,
                            choice: kernelChoice) { scratch in
                    try ExpandedDepthwiseConvolution.apply(
                        input: input, expansion: expansion.weights, expansionBias: expansion.bias,
                        expansionActivation: expansion.activation, expansionGeometry: expansion.geometry, weights: packed,
                        bias: bias, residual: residual, activation: activation, output: output, geometry: kernelGeometry,
                        scratch: scratch, context: context)
                }
            }
            let (inputStorage, outputStorage) = (operands.inputStorage[0], operands.outputStorage[0])
            if inputStorage == .bf16 || outputStorage == .bf16 {
                // A depthwise layer between bf16 activations (`ActivationStorageRule`): fp32 sums on
                // the AVX512_BF16 body's loads and stores (the output's storage shows as "bf16 out").
                if inputStorage == .bf16 { kernelChoice.algorithm += "+bf16_in" }
                kernelChoice.kernel = "AVX512_BF16"
                return convolving { output, _ in
                    try DepthwiseConvolution.apply(input: input, weights: packed, bias: bias, residual: residual,
                                                   activation: activation, output: output, geometry: kernelGeometry,
                                                   inputStorage: inputStorage, outputStorage: outputStorage,
                                                   context: context)
                }
            }
            return convolving { output, scratch in
                try Conv2D.apply(input: input, weights: packed, bias: bias, residual: residual, activation: activation,
                                 output: output, geometry: kernelGeometry, scratch: scratch, algorithm: algorithm,
                                 inputLayout: inputLayout, context: context)
            }
        }
    }

    static func lowerConvTranspose(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let (inputShape, kernelShape) = (operands.inputShapes[0], operands.inputShapes[1])
        let resolved = try TransposedConvolutionGeometry.resolve(node, input: Shape(known: inputShape),
                                                                 kernel: Shape(known: kernelShape))
        let geometry = ConvTransposeGeometry(resolved, batch: inputShape[0])
        let input = try operands.input(0)
        let kernel = try operands.input(1)
        let bias = try operands.optionalInput(2)
        let output = try operands.output()
        let context = operands.kernelContext
        let macs = Double(inputShape.reduce(1, *)) * Double(resolved.outputChannels / resolved.groups * resolved.kernel.reduce(1, *))
        return Step(node: node.name, op: node.op, flops: 2 * macs, scratchSize: ConvTranspose.scratchSize(for: geometry)) { scratch in
            try ConvTranspose.apply(input: input, weights: kernel, bias: bias, output: output, geometry: geometry,
                                    scratch: scratch, context: context)
        }
    }

    static func lowerDense(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        // The kernel's values live in the prepared weights (the graph keeps them only while some
        // other node reads them too).
        guard let kernelName = node.inputs.dropFirst().first, operands.isConstant(kernelName),
              operands.inputShapes.count > 1, operands.inputShapes[1].count == 2 else {
            throw operands.unsupported("its kernel is not a constant matrix")
        }
        let layer = try operands.reportingAgainstNode {
            try DenseLayer(node, inputShape: operands.inputShapes[0], kernelShape: operands.inputShapes[1],
                           precision: operands.context.precision, prepared: operands.prepared)
        }
        let (rows, inFeatures, outFeatures) = (layer.rows, layer.matrix.inFeatures, layer.matrix.outFeatures)
        let (activation, softmax) = try operands.node.fusedActivation.kernelEpilogue
        let input = try operands.input(0)
        let bias = try operands.optionalInput(2)
        let residual = try operands.optionalInput(3)
        let output = try operands.output()
        let context = operands.kernelContext
        let flops = 2 * Double(rows * inFeatures * outFeatures)
        let original = operands.constants[kernelName]
        let normalize = {
            if softmax {
                try Softmax.apply(input: UnsafeBufferPointer(output), output: output, outer: rows,
                                  axis: outFeatures, inner: 1, context: context)
            }
        }
        if layer.choice.form == .bf16 {
            let geometry = BF16Convolution.denseGeometry(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            let weights = try operands.reportingAgainstNode {
                try operands.prepared.payload(BF16Weights.self, for: .denseMatrix(layer.matrix), original: original,
                                              context: context)
            }
            return Step(node: node.name, op: node.op, flops: flops,
                        scratchSize: BF16Convolution.scratchSize(for: geometry, threads: context.threads),
                        choice: layer.choice.kernel) { scratch in
                try BF16Convolution.apply(input: input, weights: weights, bias: bias,
                                          residual: residual, activation: activation,
                                          output: output, geometry: geometry, scratch: scratch,
                                          inputStorage: operands.inputStorage[0],
                                          outputStorage: operands.outputStorage[0],
                                          residualStorage: operands.storage(ofInput: 3), context: context)
                try normalize()
            }
        }
        let weights = try operands.reportingAgainstNode {
            try operands.prepared.payload(PanelDenseWeights.self, for: .denseMatrix(layer.matrix), original: original,
                                          context: context)
        }
        return Step(node: node.name, op: node.op, flops: flops, choice: layer.choice.kernel) { _ in
            try Dense.apply(input: input, rows: rows, weights: weights, bias: bias, residual: residual,
                            activation: activation, output: output, context: context)
            try normalize()
        }
    }

    static func lowerMatMul(_ operands: StepOperands) throws -> Step {
        let a = try operands.input(0)
        let b = try operands.input(1)
        let output = try operands.output()
        let aShape = operands.inputShapes[0]
        let bShape = operands.inputShapes[1]
        let context = operands.kernelContext
        let inner = aShape.last ?? 1
        return Step(node: operands.node.name, op: operands.node.op, flops: 2 * Double(output.count * inner)) { _ in
            try MatMul.apply(a: a, aShape: aShape, b: b, bShape: bShape, output: output, context: context)
        }
    }

    static func lowerAttention(_ operands: StepOperands) throws -> Step {
        let (q, k, v) = (try operands.input(0), try operands.input(1), try operands.input(2))
        let output = try operands.output()
        let attributes = operands.attributes
        let shapes = Array(operands.inputShapes.prefix(3))
        guard shapes.count == 3, shapes.allSatisfy({ $0.count == 3 }) else {
            throw operands.unsupported("needs rank-3 q, k and v")
        }
        let biasValues = try operands.optionalInput(3)
        let biasPeriod = operands.inputShapes.count > 3 ? operands.inputShapes[3].first ?? 0 : 0
        let sequenceFirst = try attributes.bool("sequence_first")
        let (tokenAxis, sequenceAxis) = sequenceFirst ? (0, 1) : (1, 0)
        let shape = Attention.Shape(
            sequences: shapes[0][sequenceAxis], queryTokens: shapes[0][tokenAxis], keyTokens: shapes[1][tokenAxis],
            heads: try attributes.int("heads"), headSize: try attributes.int("head_size"), scale: try attributes.float("scale"),
            columns: shapes.map { $0[2] }, offsets: try attributes.ints("offsets"), sequenceFirst: sequenceFirst,
            headScales: try attributes.floats("head_scales"),
            normalizingEpsilon: try attributes.bool("normalize") ? try attributes.float("epsilon") : nil)
        let context = operands.kernelContext
        let flops = 4 * Double(shape.sequences * shape.heads * shape.queryTokens * shape.keyTokens * shape.headSize)
        return Step(node: operands.node.name, op: operands.node.op, flops: flops) { _ in
            try Attention.apply(q: q, k: k, v: v, bias: biasValues.map { Attention.Bias(values: $0, period: biasPeriod) },
                                output: output, shape: shape, context: context)
        }
    }
}
