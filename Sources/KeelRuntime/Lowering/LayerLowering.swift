import KeelIR
import KeelKernels

/// conv2d, conv_transpose, dense and matmul: the GEMM-bound layers. conv2d filters are packed once per model.
extension KernelLowering {
    static func lowerConvolution(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        guard let kernelName = node.inputs.dropFirst().first, operands.isConstant(kernelName) else {
            throw operands.unsupported("its kernel is not a constant; only constant filters are supported")
        }
        // The filter values are read only to prepare them, once per model: a later plan finds them
        // prepared, and the model may already have released the originals.
        let original = operands.constants[kernelName] ?? operands.prepared.original(kernelName)
        func kernelValues() throws -> UnsafeBufferPointer<Float> {
            guard let values = original?.floatBuffer else {
                throw operands.unsupported("its kernel '\(kernelName)' has no float32 values")
            }
            return values
        }
        let geometry = try ConvolutionGeometry.resolve(node, input: Shape(known: operands.inputShapes[0]),
                                                       kernel: Shape(known: operands.inputShapes[1]))
        let spatial = geometry.spatial
        let kernelGeometry = Conv2DGeometry(
            batch: operands.inputShapes[0][0],
            input: Size2D(spatial.height.input, spatial.width.input),
            inputChannels: geometry.inputChannels, outputChannels: geometry.outputChannels,
            kernel: Size2D(spatial.height.kernel, spatial.width.kernel),
            stride: Size2D(spatial.height.stride, spatial.width.stride),
            dilation: Size2D(spatial.height.dilation, spatial.width.dilation),
            padding: try Padding2D(spatial.pads), groups: geometry.groups, layout: geometry.layout.kernelLayout)
        try kernelGeometry.validate()
        let perGroup = geometry.inputChannels / max(geometry.groups, 1)
        let size = Size2D(spatial.height.kernel, spatial.width.kernel)
        let pack = { () throws -> PackedConv2DWeights in
            switch geometry.kernelLayout {
            case .hwio:
                return try PackedConv2DWeights(hwio: try kernelValues(), kernel: size, inputChannelsPerGroup: perGroup,
                                               outputChannels: geometry.outputChannels, groups: geometry.groups,
                                               context: operands.kernelContext)
            case .oihw:
                return try PackedConv2DWeights(oihw: try kernelValues(), kernel: size, inputChannelsPerGroup: perGroup,
                                               outputChannels: geometry.outputChannels, groups: geometry.groups,
                                               context: operands.kernelContext)
            }
        }
        let (activation, softmax) = try operands.node.fusedActivation.kernelEpilogue
        guard !softmax else { throw operands.unsupported("conv2d has no softmax epilogue") }
        let input = try operands.input(0)
        let bias = try operands.optionalInput(2)
        let residual = try operands.optionalInput(3)
        let output = try operands.output()
        let context = operands.kernelContext
        let macs = Double(geometry.macsPerImage) * Double(kernelGeometry.batch)
        let (packedKey, winogradKey) = (PreparedFilter.key(.packed, kernelName), PreparedFilter.key(.winograd, kernelName))
        let bf16Key = PreparedFilter.key(.bf16, kernelName)
        // bf16 where asked for and a kernel runs it, or where the filter exists only in bf16 (a
        // .keelc compiled with --precision bf16).
        let bf16Only = original == nil && operands.prepared.existing(bf16Key, as: BF16Weights.self) != nil
        // A layer with few input channels (an RGB first layer) stays on the fp32 direct kernel:
        // its 27-deep products cannot feed the bf16 tiles, and building their rows costs more.
        let hasResidual = node.inputs.count > 3 && !node.inputs[3].isEmpty
        let useBF16 = (operands.context.precision == .bf16 || bf16Only) && BF16Convolution.supports(kernelGeometry)
            && BF16Convolution.isAvailable && (bf16Only || Conv2D.defaultAlgorithm(for: kernelGeometry) != .direct)
        if bf16Only && !useBF16 {
            throw operands.unsupported("its filter was compiled for bf16 only, and this CPU has neither AMX-BF16 nor "
                                       + "AVX512_BF16; compile the model again with --precision fp32")
        }
        var algorithm = Conv2D.defaultAlgorithm(for: kernelGeometry)
        if useBF16 { algorithm = .im2colGEMM }
        // The choice depends on the batch. A plan for a smaller batch than an earlier one may find
        // the filter only in the Winograd form, its original released: Winograd then, which is
        // correct for any number of tiles. (The other way round, Winograd weights come from the
        // packed ones below.)
        if !useBF16, algorithm == .im2colGEMM, WinogradWeights.canRun(kernelGeometry),
           operands.prepared.existing(packedKey, as: PackedConv2DWeights.self) == nil,
           operands.prepared.existing(winogradKey, as: WinogradWeights.self) != nil {
            algorithm = .winograd
        }
        var scratchSize = useBF16 ? BF16Convolution.scratchSize(for: kernelGeometry, threads: context.threads)
            : Conv2D.scratchSize(for: kernelGeometry, algorithm: algorithm, threads: context.threads)
        // A fused max pool happens inside the Winograd NHWC output pass or the bf16 direct form's
        // epilogue; elsewhere the full-size output goes to scratch and is pooled from there.
        let poolsInKernel = useBF16
            ? BF16Convolution.poolsInKernel(kernelGeometry) && (activation == .relu || activation == .identity)
                && residual == nil
            : algorithm == .winograd && kernelGeometry.layout == .nhwc && residual == nil
        let separatePool = geometry.fusedMaxPool && !poolsInKernel
        let convolutionScratch = scratchSize
        if separatePool { scratchSize += kernelGeometry.outputElementCount }
        let poolGeometry = Pool2DGeometry(
            batch: kernelGeometry.batch, channels: kernelGeometry.outputChannels, input: kernelGeometry.output,
            output: Size2D(kernelGeometry.output.height / 2, kernelGeometry.output.width / 2), window: Size2D(2, 2),
            stride: Size2D(2, 2), layout: kernelGeometry.layout)
        /// Runs `convolve` into `output`, or into scratch followed by the pool.
        let choice = useBF16
            ? KernelChoice(precision: .bf16, algorithm: BF16Convolution.form(for: kernelGeometry), kernel: BF16Convolution.instructionSet(for: kernelGeometry))
            : KernelChoice.fp32(algorithm, residual: hasResidual)
        func convolving(_ convolve: @escaping (_ output: UnsafeMutableBufferPointer<Float>,
                                               _ scratch: UnsafeMutableBufferPointer<Float>) throws -> Void) -> Step {
            Step(node: node.name, op: node.op, flops: 2 * macs, scratchSize: scratchSize, choice: choice) { scratch in
                guard separatePool else { return try convolve(output, scratch) }
                let full = UnsafeMutableBufferPointer(rebasing: scratch[convolutionScratch...])
                try convolve(full, UnsafeMutableBufferPointer(rebasing: scratch[..<convolutionScratch]))
                try Pooling.maxPool(input: UnsafeBufferPointer(full), output: output, geometry: poolGeometry,
                                    context: context)
            }
        }
        if useBF16 {
            let packedEarlier = operands.prepared.existing(packedKey, as: PackedConv2DWeights.self)
            let weights = try operands.prepared.value(bf16Key) { () throws -> BF16Weights in
                try BF16Weights(try packedEarlier ?? pack())
            }
            let pooled = geometry.fusedMaxPool && poolsInKernel
            return convolving { output, scratch in
                try BF16Convolution.apply(input: input, weights: weights, bias: bias, residual: residual,
                                          activation: activation, output: output, geometry: kernelGeometry,
                                          scratch: scratch, maxPooled: pooled, context: context)
            }
        }
        if algorithm == .winograd {
            let packedEarlier = operands.prepared.existing(packedKey, as: PackedConv2DWeights.self)
            let transformed = try operands.prepared.value(winogradKey) { () throws -> WinogradWeights in
                if let packedEarlier, original == nil {
                    return try WinogradWeights(packedEarlier, context: context)
                }
                switch geometry.kernelLayout {
                case .hwio:
                    return try WinogradWeights(hwio: try kernelValues(), inputChannels: geometry.inputChannels,
                                               outputChannels: geometry.outputChannels, context: context)
                case .oihw:
                    return try WinogradWeights(oihw: try kernelValues(), inputChannels: geometry.inputChannels,
                                               outputChannels: geometry.outputChannels, context: context)
                }
            }
            let pooled = geometry.fusedMaxPool && poolsInKernel
            return convolving { output, scratch in
                try Conv2D.apply(input: input, weights: transformed, bias: bias, residual: residual, activation: activation,
                                 output: output, geometry: kernelGeometry, scratch: scratch, maxPooled: pooled,
                                 context: context)
            }
        }
        let packed = try operands.prepared.value(packedKey, pack)
        return convolving { output, scratch in
            try Conv2D.apply(input: input, weights: packed, bias: bias, residual: residual, activation: activation,
                             output: output, geometry: kernelGeometry, scratch: scratch, algorithm: algorithm,
                             context: context)
        }
    }

    static func lowerConvTranspose(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let (inputShape, kernelShape) = (operands.inputShapes[0], operands.inputShapes[1])
        let resolved = try TransposedConvolutionGeometry.resolve(node, input: Shape(known: inputShape),
                                                                 kernel: Shape(known: kernelShape))
        let rank = resolved.input.count
        let geometry = ConvTransposeGeometry(
            batch: inputShape[0], inputChannels: resolved.inputChannels, outputChannels: resolved.outputChannels,
            groups: resolved.groups, input: resolved.input, output: resolved.output, kernel: resolved.kernel,
            strides: resolved.strides, dilations: resolved.dilations, padBegin: Array(resolved.pads[..<rank]))
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
        guard let kernelName = node.inputs.dropFirst().first, let kernelData = operands.constants[kernelName],
              let kernel = kernelData.floatBuffer, kernelData.shape.count == 2 else {
            throw operands.unsupported("its kernel is not a constant matrix")
        }
        let layout = try operands.attributes.string("weight_layout")
        let (inFeatures, outFeatures) = layout == "out_in" ? (kernelData.shape[1], kernelData.shape[0])
                                                            : (kernelData.shape[0], kernelData.shape[1])
        let rows = operands.inputShapes[0].dropLast().reduce(1, *)
        let (activation, softmax) = try operands.node.fusedActivation.kernelEpilogue
        let input = try operands.input(0)
        let bias = try operands.optionalInput(2)
        let residual = try operands.optionalInput(3)
        let output = try operands.output()
        let context = operands.kernelContext
        let weightLayout: DenseWeightLayout = layout == "out_in" ? .outIn : .inOut
        let flops = 2 * Double(rows * inFeatures * outFeatures)
        if operands.context.precision == .bf16 && BF16Convolution.isAvailable {
            // A dense layer is the 1×1 convolution of `rows` one-pixel images.
            let geometry = Conv2DGeometry(batch: rows, input: Size2D(1, 1), inputChannels: inFeatures,
                                          outputChannels: outFeatures, kernel: Size2D(1, 1))
            let weights = try operands.prepared.value(PreparedFilter.key(.bf16, kernelName)) { () throws -> BF16Weights in
                try BF16Weights(kernel, depth: inFeatures, columns: outFeatures,
                                depthStride: weightLayout == .inOut ? outFeatures : 1,
                                columnStride: weightLayout == .inOut ? 1 : inFeatures)
            }
            let choice = KernelChoice(precision: .bf16, algorithm: "gemm", kernel: BF16Convolution.instructionSet(for: geometry))
            return Step(node: node.name, op: node.op, flops: flops,
                        scratchSize: BF16Convolution.scratchSize(for: geometry, threads: context.threads),
                        choice: choice) { scratch in
                try BF16Convolution.apply(input: input, weights: weights, bias: bias,
                                          residual: residual, activation: activation,
                                          output: output, geometry: geometry, scratch: scratch, context: context)
                if softmax {
                    try Softmax.apply(input: UnsafeBufferPointer(output), output: output, outer: rows,
                                      axis: outFeatures, inner: 1, context: context)
                }
            }
        }
        let product = weightLayout == .inOut ? KernelChoice.fp32GEMMKernel : "OpenBLAS"
        let choice = KernelChoice(precision: .fp32, algorithm: residual == nil ? "gemm" : "gemm+residual", kernel: product)
        return Step(node: node.name, op: node.op, flops: flops, choice: choice) { _ in
            try Dense.apply(input: input, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                            kernel: kernel, layout: weightLayout, bias: bias, residual: residual, activation: activation,
                            output: output, context: context)
            if softmax {
                try Softmax.apply(input: UnsafeBufferPointer(output), output: output, outer: rows,
                                  axis: outFeatures, inner: 1, context: context)
            }
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
}
