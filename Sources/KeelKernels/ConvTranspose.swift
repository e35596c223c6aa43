/// Transposed convolution (ONNX ConvTranspose, Keras Conv2DTranspose) over channels-first
/// tensors with one to three spatial axes. Per image and group, one GEMM spreads every input
/// pixel over its kernel window (columns = Wᵀ·X), then col2im adds the columns into the
/// output at stride·position + dilation·offset - padBegin.

/// Everything a transposed convolution needs; spatial lists have one entry per axis (1 to 3).
public struct ConvTransposeGeometry: Sendable, Equatable {
    public var batch: Int
    public var inputChannels: Int
    public var outputChannels: Int
    public var groups: Int
    public var input: [Int]
    /// Output extents: stride·(input-1) + (kernel-1)·dilation + 1 + output padding - pads.
    public var output: [Int]
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    /// Leading padding per axis: how many of the full result's first positions are cropped.
    public var padBegin: [Int]

    public init(batch: Int, inputChannels: Int, outputChannels: Int, groups: Int = 1, input: [Int], output: [Int],
                kernel: [Int], strides: [Int], dilations: [Int], padBegin: [Int]) {
        self.batch = batch
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.groups = groups
        self.input = input
        self.output = output
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.padBegin = padBegin
    }

    var inputPlane: Int { input.reduce(1, *) }
    var outputPlane: Int { output.reduce(1, *) }
    var kernelVolume: Int { kernel.reduce(1, *) }

    func validate(_ name: String) throws {
        let rank = kernel.count
        try require((1...3).contains(rank) && [input, output, strides, dilations, padBegin].allSatisfy { $0.count == rank },
                    name, "spatial lists must all have 1 to 3 entries")
        try require(groups >= 1 && inputChannels % groups == 0 && outputChannels % groups == 0, name,
                    "\(inputChannels) input and \(outputChannels) output channels do not split into \(groups) groups")
        try require(batch >= 0 && inputChannels > 0 && outputChannels > 0, name, "batch \(batch), channels \(inputChannels)→\(outputChannels)")
        try require((input + output + kernel + strides + dilations).allSatisfy { $0 > 0 && $0 <= 1 << 24 }
                        && padBegin.allSatisfy { $0 >= 0 && $0 <= 1 << 24 }, name, "extents must be positive and below 2^24")
        _ = try elementCount([batch, inputChannels] + input, name)
        _ = try elementCount([batch, outputChannels] + output, name)
        try requireBLASExtents(outputChannels / groups * kernelVolume, inputPlane, inputChannels / groups, kernel: name)
    }
}

public enum ConvTranspose {
    /// Scratch the columns of one image and group take.
    public static func scratchSize(for geometry: ConvTransposeGeometry) -> Int {
        let (product, overflow) = (geometry.outputChannels / max(geometry.groups, 1) * geometry.kernelVolume)
            .multipliedReportingOverflow(by: geometry.inputPlane)
        return overflow ? 0 : product
    }

    /// `weights` are [inputChannels, outputChannels/groups, kernel...] (ONNX's layout); `bias`
    /// holds one value per output channel.
    public static func apply(input: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>,
                             bias: UnsafeBufferPointer<Float>? = nil, output: UnsafeMutableBufferPointer<Float>,
                             geometry: ConvTransposeGeometry, scratch: UnsafeMutableBufferPointer<Float>,
                             context: KernelContext = .singleThreaded) throws {
        let name = "conv_transpose"
        try geometry.validate(name)
        let (inputPlane, outputPlane, volume) = (geometry.inputPlane, geometry.outputPlane, geometry.kernelVolume)
        let groupInputs = geometry.inputChannels / geometry.groups
        let groupOutputs = geometry.outputChannels / geometry.groups
        try requireCapacity(input.count, geometry.batch * geometry.inputChannels * inputPlane, name, "input")
        try requireCapacity(weights.count, geometry.inputChannels * groupOutputs * volume, name, "weights")
        try requireCapacity(output.count, geometry.batch * geometry.outputChannels * outputPlane, name, "output")
        try requireCapacity(scratch.count, scratchSize(for: geometry), name, "scratch")
        if let bias { try requireCapacity(bias.count, geometry.outputChannels, name, "bias") }
        guard geometry.batch > 0, let source = input.baseAddress, let filters = weights.baseAddress,
              let destination = output.baseAddress, let columns = scratch.baseAddress else { return }
        // Pad every list to three axes (leading extents of 1) so col2im is one loop nest.
        func three(_ values: [Int], _ fill: Int) -> [Int] { Array(repeating: fill, count: 3 - values.count) + values }
        let (inputs, outputs, kernel) = (three(geometry.input, 1), three(geometry.output, 1), three(geometry.kernel, 1))
        let (strides, dilations, pads) = (three(geometry.strides, 1), three(geometry.dilations, 1), three(geometry.padBegin, 0))
        let biases = bias?.baseAddress
        for image in 0..<geometry.batch {
            for group in 0..<geometry.groups {
                let groupInput = source + (image * geometry.inputChannels + group * groupInputs) * inputPlane
                let groupWeights = filters + group * groupInputs * groupOutputs * volume
                sgemm(transposeA: true, transposeB: false, m: groupOutputs * volume, n: inputPlane, k: groupInputs,
                      a: groupWeights, lda: groupOutputs * volume, b: groupInput, ldb: inputPlane, c: columns, ldc: inputPlane, context: context)
                let firstChannel = image * geometry.outputChannels + group * groupOutputs
                context.forEachChunk(groupOutputs, minimumChunk: max(1, parallelGrain / max(volume * inputPlane, 1))) { channels in
                    for channel in channels {
                        let plane = destination + (firstChannel + channel) * outputPlane
                        plane.update(repeating: biases?[group * groupOutputs + channel] ?? 0, count: outputPlane)
                        var row = columns + channel * volume * inputPlane
                        for kd in 0..<kernel[0] {
                            for kh in 0..<kernel[1] {
                                for kw in 0..<kernel[2] {
                                    for d in 0..<inputs[0] {
                                        let od = d * strides[0] + kd * dilations[0] - pads[0]
                                        guard od >= 0 && od < outputs[0] else { continue }
                                        for h in 0..<inputs[1] {
                                            let oh = h * strides[1] + kh * dilations[1] - pads[1]
                                            guard oh >= 0 && oh < outputs[1] else { continue }
                                            let from = row + (d * inputs[1] + h) * inputs[2]
                                            let line = plane + (od * outputs[1] + oh) * outputs[2]
                                            for w in 0..<inputs[2] {
                                                let ow = w * strides[2] + kw * dilations[2] - pads[2]
                                                if ow >= 0 && ow < outputs[2] { line[ow] += from[w] }
                                            }
                                        }
                                    }
                                    row += inputPlane
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
