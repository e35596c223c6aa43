extension OpRegistry {
    /// conv_transpose: channels-first x [N, C, spatial...] with 1 to 3 spatial axes, kernel
    /// [C, out/groups, k...] (ONNX's layout), bias [out]?.
    static var convTransposeSchema: OpSchema {
        OpSchema(
            kind: .convTranspose, category: .convolution,
            inputs: [.init("x"), .init("kernel", isParameter: true), .init("bias", optional: true, isParameter: true)],
            attributes: [
                .init("strides", default: nil, "1 per spatial axis when absent"),
                .init("dilations", default: nil, "1 per spatial axis when absent"),
                .init("pads", default: nil, "[begin per axis..., end per axis...] cropped from the full result; 0s when absent"),
                .init("output_padding", default: nil, "extra positions at the end of each axis; 0s when absent"),
                .init("groups", default: .int(1)),
            ]
        ) { context in
            let geometry = try TransposedConvolutionGeometry.resolve(context)
            let input = try context.type(0)
            return [TensorType(input.dtype, Shape([input.shape[0], .known(geometry.outputChannels)] + geometry.output.map { .known($0) }))]
        }
    }
}

/// A conv_transpose node's geometry, resolved once for shape inference and the runtime.
public struct TransposedConvolutionGeometry: Hashable, Sendable {
    public var inputChannels: Int
    public var outputChannels: Int
    public var groups: Int
    public var input: [Int]
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    /// [begin per axis..., end per axis...]
    public var pads: [Int]
    public var outputPadding: [Int]
    /// stride·(input-1) + (kernel-1)·dilation + 1 + output_padding - pads, per axis.
    public var output: [Int]

    /// Every input position meets every tap of its group's filters.
    public var macsPerImage: Int {
        input.reduce(1, &*) &* inputChannels &* kernel.reduce(1, &*) &* (outputChannels / max(groups, 1))
    }

    public static func resolve(_ node: Node, input: Shape, kernel: Shape) throws -> TransposedConvolutionGeometry {
        try resolve(OpSchema.Context(node: node, inputTypes: [TensorType(.float32, input), TensorType(.float32, kernel)]))
    }

    static func resolve(_ context: OpSchema.Context) throws -> TransposedConvolutionGeometry {
        let input = try context.type(0)
        let kernel = try context.type(1)
        let rank = input.shape.rank - 2
        guard (1...3).contains(rank), let channels = input.shape[1].value,
              let spatial = Array(input.shape.dims[2...]).knownValues else {
            throw context.error("expects a channels-first input with 1 to 3 known spatial axes but \(context.quote(0, input)) is not one")
        }
        guard kernel.shape.rank == rank + 2, let extents = kernel.shape.knownExtents else {
            throw context.error("kernel '\(context.inputName(1))' must have a known rank-\(rank + 2) shape but is \(kernel.shape)")
        }
        let reader = context.attributes
        let groups = try reader.int("groups")
        guard groups >= 1, groups <= 1 << 16, extents[0] == channels, channels % groups == 0 else {
            throw context.error("kernel \(kernel.shape) is not for \(channels) input channels in \(groups) groups")
        }
        let (outputChannels, overflow) = extents[1].multipliedReportingOverflow(by: groups)
        guard !overflow, outputChannels > 0 else { throw context.error("kernel \(kernel.shape) has no output channels") }
        if let bias = context.optionalType(2), bias.shape != Shape(known: [outputChannels]) {
            throw context.error("bias '\(context.inputName(2))' is \(bias.shape) but the layer has \(outputChannels) output channels")
        }
        func list(_ name: String, _ fill: Int, _ count: Int, minimum: Int) throws -> [Int] {
            let values = try reader.optionalInts(name) ?? Array(repeating: fill, count: count)
            guard values.count == count, values.allSatisfy({ $0 >= minimum && $0 <= 1 << 24 }) else {
                throw context.error("\(name) \(AttributeValue.ints(values)) must be \(count) integers of at least \(minimum)")
            }
            return values
        }
        let strides = try list("strides", 1, rank, minimum: 1)
        let dilations = try list("dilations", 1, rank, minimum: 1)
        let pads = try list("pads", 0, 2 * rank, minimum: 0)
        let outputPadding = try list("output_padding", 0, rank, minimum: 0)
        let window = Array(extents[2...])
        var output: [Int] = []
        for axis in 0..<rank {
            guard spatial[axis] <= 1 << 24, window[axis] <= 1 << 24 else { throw context.error("extents are too large") }
            let full = strides[axis] * (spatial[axis] - 1) + (window[axis] - 1) * dilations[axis] + 1 + outputPadding[axis]
            let extent = full - pads[axis] - pads[rank + axis]
            guard extent > 0 else {
                throw context.error("pads \(AttributeValue.ints(pads)) crop all \(full) positions of spatial axis \(axis)")
            }
            output.append(extent)
        }
        return TransposedConvolutionGeometry(inputChannels: channels, outputChannels: outputChannels, groups: groups,
                                             input: spatial, kernel: window, strides: strides, dilations: dilations,
                                             pads: pads, outputPadding: outputPadding, output: output)
    }
}

private extension Array where Element == Dim {
    var knownValues: [Int]? {
        var values: [Int] = []
        for dim in self {
            guard let value = dim.value else { return nil }
            values.append(value)
        }
        return values
    }
}
