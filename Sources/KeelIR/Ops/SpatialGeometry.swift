/// How conv2d and the pools pad their input. `same` is TensorFlow/Keras's (ONNX SAME_UPPER).
public enum PaddingMode: String, Hashable, Sendable, CaseIterable {
    case valid, same, explicit
}

/// Why a geometry cannot be resolved; shape functions turn it into a located `Diagnostic`.
public struct GeometryError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Resolved geometry along one spatial axis: the same arithmetic for shape inference, the
/// runtime and the kernels, so they can never disagree on padding or output size.
public struct AxisGeometry: Hashable, Sendable {
    public var input: Int
    public var kernel: Int
    public var stride: Int
    public var dilation: Int
    public var padBegin: Int
    public var padEnd: Int
    public var output: Int

    /// The span the dilated kernel covers.
    public var effectiveKernel: Int { (kernel - 1) * dilation + 1 }

    /// - `same`: output = ceil(input / stride); total padding
    ///   max((output-1)·stride + effectiveKernel - input, 0), the odd pixel at the end.
    /// - `valid`: no padding, output = floor((input - effectiveKernel) / stride) + 1.
    /// - `explicit`: the given pads; output floors, or ceils with `ceilMode` (never starting a
    ///   window inside the end padding, as ONNX and PyTorch do).
    public static func resolve(input: Int, kernel: Int, stride: Int, dilation: Int,
                               padding: PaddingMode, explicitPads: (begin: Int, end: Int) = (0, 0),
                               ceilMode: Bool = false) throws -> AxisGeometry {
        guard input > 0 else { throw GeometryError("input extent \(input) must be positive") }
        guard kernel > 0 else { throw GeometryError("kernel extent \(kernel) must be positive") }
        guard stride > 0 else { throw GeometryError("stride \(stride) must be positive") }
        guard dilation > 0 else { throw GeometryError("dilation \(dilation) must be positive") }
        // Bounds that keep every product below overflow; no real tensor comes near them.
        let limit = 1 << 24
        for (name, value) in [("input extent", input), ("kernel extent", kernel), ("stride", stride), ("dilation", dilation),
                              ("pad", explicitPads.begin), ("pad", explicitPads.end)] where value > limit {
            throw GeometryError("\(name) \(formatCount(value)) is too large")
        }
        let span = (kernel - 1) * dilation + 1
        var begin = 0
        var end = 0
        let output: Int
        switch padding {
        case .same:
            output = (input + stride - 1) / stride
            let total = Swift.max((output - 1) * stride + span - input, 0)
            begin = total / 2
            end = total - begin
        case .valid, .explicit:
            if padding == .explicit {
                guard explicitPads.begin >= 0, explicitPads.end >= 0 else {
                    throw GeometryError("pads (\(explicitPads.begin), \(explicitPads.end)) must not be negative")
                }
                begin = explicitPads.begin
                end = explicitPads.end
            }
            let padded = input + begin + end
            guard padded >= span else {
                throw GeometryError("extent \(input)\(begin + end > 0 ? " padded to \(padded)" : "") is smaller than the kernel's \(span)")
            }
            if ceilMode {
                var count = (padded - span + stride - 1) / stride + 1
                if (count - 1) * stride >= input + begin { count -= 1 }
                output = count
            } else {
                output = (padded - span) / stride + 1
            }
        }
        return AxisGeometry(input: input, kernel: kernel, stride: stride, dilation: dilation,
                            padBegin: begin, padEnd: end, output: output)
    }
}

/// Height and width geometry of a conv2d or pooling window.
public struct SpatialGeometry: Hashable, Sendable {
    public var height: AxisGeometry
    public var width: AxisGeometry

    public init(height: AxisGeometry, width: AxisGeometry) {
        self.height = height
        self.width = width
    }

    /// `strides`, `dilations` have two entries; `pads` is [top,left,bottom,right] (explicit only).
    public init(inputHeight: Int, inputWidth: Int, kernelHeight: Int, kernelWidth: Int,
                strides: [Int] = [1, 1], dilations: [Int] = [1, 1], padding: PaddingMode,
                pads: [Int] = [0, 0, 0, 0], ceilMode: Bool = false) throws {
        guard strides.count == 2 else { throw GeometryError("strides must have 2 entries, got \(strides.count)") }
        guard dilations.count == 2 else { throw GeometryError("dilations must have 2 entries, got \(dilations.count)") }
        guard pads.count == 4 else { throw GeometryError("pads must have 4 entries [top,left,bottom,right], got \(pads.count)") }
        height = try AxisGeometry.resolve(input: inputHeight, kernel: kernelHeight, stride: strides[0],
                                          dilation: dilations[0], padding: padding,
                                          explicitPads: (pads[0], pads[2]), ceilMode: ceilMode)
        width = try AxisGeometry.resolve(input: inputWidth, kernel: kernelWidth, stride: strides[1],
                                         dilation: dilations[1], padding: padding,
                                         explicitPads: (pads[1], pads[3]), ceilMode: ceilMode)
    }

    public var outputHeight: Int { height.output }
    public var outputWidth: Int { width.output }
    /// [top, left, bottom, right], the order of the `pads` attribute.
    public var pads: [Int] { [height.padBegin, width.padBegin, height.padEnd, width.padEnd] }
    public var hasPadding: Bool { pads.contains { $0 != 0 } }
}

/// How a conv2d kernel constant orders its axes.
public enum KernelLayout: String, Hashable, Sendable {
    /// Keras: [kh, kw, in/groups, out].
    case hwio
    /// ONNX: [out, in/groups, kh, kw].
    case oihw
}

/// Everything a conv2d needs, resolved once from the node, its input and its kernel shape.
public struct ConvolutionGeometry: Hashable, Sendable {
    public var layout: Layout
    public var kernelLayout: KernelLayout
    public var batch: Dim
    public var inputChannels: Int
    public var outputChannels: Int
    public var groups: Int
    public var spatial: SpatialGeometry
    /// The `pool` attribute is "max2x2": a 2×2 stride-2 max pool (floor mode) follows the
    /// activation inside the op (set by the max-pool-fusion pass).
    public var fusedMaxPool: Bool = false
    public var kernelHeight: Int { spatial.height.kernel }
    public var kernelWidth: Int { spatial.width.kernel }

    /// The op's output: the convolution's, halved (rounding down) when a max pool is fused.
    public var outputShape: Shape {
        let (height, width) = fusedMaxPool ? (spatial.outputHeight / 2, spatial.outputWidth / 2)
                                           : (spatial.outputHeight, spatial.outputWidth)
        return layout == .nhwc
            ? Shape([batch, .known(height), .known(width), .known(outputChannels)])
            : Shape([batch, .known(outputChannels), .known(height), .known(width)])
    }

    /// Multiply-accumulates per image: outH·outW·kh·kw·(cin/groups)·cout.
    public var macsPerImage: Int {
        Shape.saturatingProduct([spatial.outputHeight, spatial.outputWidth, kernelHeight, kernelWidth,
                                 inputChannels / Swift.max(groups, 1), outputChannels])
    }

    public init(layout: Layout, kernelLayout: KernelLayout, batch: Dim, inputChannels: Int,
                outputChannels: Int, groups: Int, spatial: SpatialGeometry) {
        self.layout = layout
        self.kernelLayout = kernelLayout
        self.batch = batch
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.groups = groups
        self.spatial = spatial
    }

    /// Resolves a conv2d node's geometry from its attributes (with schema defaults), the input
    /// shape and the kernel shape. Throws a `Diagnostic` naming the layer and the shapes.
    public static func resolve(_ node: Node, input: Shape, kernel: Shape) throws -> ConvolutionGeometry {
        let context = OpSchema.Context(node: node, inputTypes: [TensorType(.float32, input), TensorType(.float32, kernel)])
        return try resolve(context)
    }

    static func resolve(_ context: OpSchema.Context) throws -> ConvolutionGeometry {
        let reader = context.attributes
        let layout = try context.layout()
        let kernelLayout = KernelLayout(rawValue: try reader.choice("kernel_layout", ["hwio", "oihw"])) ?? .hwio
        let input = try context.requireImage(0, layout: layout)
        let kernel = try context.type(1)
        guard kernel.shape.rank == 4, let extents = kernel.shape.knownExtents else {
            throw context.error("kernel '\(context.inputName(1))' must have a known rank-4 \(kernelLayout.rawValue) shape but is \(kernel.shape)")
        }
        let (kernelHeight, kernelWidth, kernelIn, kernelOut) = kernelLayout == .hwio
            ? (extents[0], extents[1], extents[2], extents[3])
            : (extents[2], extents[3], extents[1], extents[0])
        let groups = try reader.int("groups")
        guard groups >= 1 else { throw context.error("groups must be at least 1, got \(groups)") }
        guard let channels = input.shape[layout.channelAxis].value else {
            throw context.error("needs a known channel count but \(context.quote(0, input)) has \(input.shape[layout.channelAxis]) channels")
        }
        guard groups <= Swift.max(channels, 1) else {
            throw context.error("has \(groups) groups but input '\(context.inputName(0))' has only \(formatCount(channels)) channels: \(input.shape)")
        }
        let (groupedChannels, overflow) = kernelIn.multipliedReportingOverflow(by: groups)
        if overflow || groupedChannels != channels {
            let perGroup = groups > 1 ? " (\(formatCount(kernelIn)) per group × \(groups) groups)" : ""
            throw context.error("kernel is for \(formatCount(groupedChannels)) input channels\(perGroup) but input '\(context.inputName(0))' has \(formatCount(channels)): \(input.shape)")
        }
        guard kernelOut % groups == 0 else {
            throw context.error("kernel has \(formatCount(kernelOut)) output channels, not divisible by \(groups) groups")
        }
        if let bias = context.optionalType(2), bias.shape != Shape(known: [kernelOut]) {
            throw context.error("bias '\(context.inputName(2))' is \(bias.shape) but the kernel has \(formatCount(kernelOut)) output channels")
        }
        let spatial = try spatialGeometry(context, input: input, layout: layout, kernelHeight: kernelHeight,
                                          kernelWidth: kernelWidth, ceilMode: false, window: "\(kernelHeight)×\(kernelWidth) kernel")
        var geometry = ConvolutionGeometry(layout: layout, kernelLayout: kernelLayout, batch: input.shape[0],
                                           inputChannels: channels, outputChannels: kernelOut, groups: groups,
                                           spatial: spatial)
        geometry.fusedMaxPool = try reader.choice("pool", ["none", "max2x2"]) == "max2x2"
        if geometry.fusedMaxPool && (spatial.outputHeight < 2 || spatial.outputWidth < 2) {
            throw context.error("fuses a 2×2 max pool but its output is only \(spatial.outputHeight)×\(spatial.outputWidth)")
        }
        return geometry
    }

    /// Reads strides/dilations/padding/pads and resolves H and W, wrapping problems in a Diagnostic.
    static func spatialGeometry(_ context: OpSchema.Context, input: TensorType, layout: Layout,
                                kernelHeight: Int, kernelWidth: Int, strides: [Int]? = nil,
                                ceilMode: Bool, window: String) throws -> SpatialGeometry {
        let reader = context.attributes
        let padding = PaddingMode(rawValue: try reader.choice("padding", ["valid", "same", "explicit"])) ?? .valid
        let strides = try strides ?? reader.ints("strides")
        let dilations = reader.schema.attributeSpec("dilations") == nil ? [1, 1] : try reader.ints("dilations")
        var pads = [0, 0, 0, 0]
        if padding == .explicit {
            guard reader.has("pads") else { throw context.error("has padding \"explicit\" but no 'pads' [top,left,bottom,right]") }
            pads = try reader.ints("pads")
        }
        for (name, values, count) in [("strides", strides, 2), ("dilations", dilations, 2), ("pads", pads, 4)] {
            let nonNegative = name == "pads"
            guard values.count == count, values.allSatisfy({ nonNegative ? $0 >= 0 : $0 > 0 }) else {
                throw context.error("\(name) must be \(count) \(nonNegative ? "non-negative" : "positive") integers, got \(AttributeValue.ints(values))")
            }
        }
        guard let height = input.shape[layout.heightAxis].value, let width = input.shape[layout.widthAxis].value else {
            throw context.error("needs a known height and width but \(context.quote(0, input)) is symbolic there; "
                                + "give the model's input a size (keel: --input-shape, or an --input of that size)")
        }
        do {
            return try SpatialGeometry(inputHeight: height, inputWidth: width, kernelHeight: kernelHeight,
                                       kernelWidth: kernelWidth, strides: strides, dilations: dilations,
                                       padding: padding, pads: pads, ceilMode: ceilMode)
        } catch let problem as GeometryError {
            throw context.error("\(window) does not fit \(context.quote(0, input)) with \(padding.rawValue) padding: \(problem.message)")
        }
    }
}

/// Everything a 2-D pooling node needs: window, strides (default = pool_size), padding, layout.
public struct PoolingGeometry: Hashable, Sendable {
    public var layout: Layout
    public var spatial: SpatialGeometry
    public var ceilMode: Bool
    /// Average pooling only: whether padded cells count in the divisor (Keras: no).
    public var countIncludePad: Bool
    public var outputShape: Shape

    public static func resolve(_ node: Node, input: Shape) throws -> PoolingGeometry {
        try resolve(OpSchema.Context(node: node, inputTypes: [TensorType(.float32, input)]))
    }

    static func resolve(_ context: OpSchema.Context) throws -> PoolingGeometry {
        let reader = context.attributes
        let layout = try context.layout()
        let input = try context.requireImage(0, layout: layout)
        let poolSize = try reader.ints("pool_size")
        guard poolSize.count == 2, poolSize.allSatisfy({ $0 > 0 }) else {
            throw context.error("pool_size must be 2 positive integers, got \(AttributeValue.ints(poolSize))")
        }
        let ceilMode = try reader.int("ceil_mode") != 0
        let countIncludePad = reader.schema.attributeSpec("count_include_pad") == nil ? false : try reader.int("count_include_pad") != 0
        let strides = try reader.optionalInts("strides") ?? poolSize
        let spatial = try ConvolutionGeometry.spatialGeometry(
            context, input: input, layout: layout, kernelHeight: poolSize[0], kernelWidth: poolSize[1],
            strides: strides, ceilMode: ceilMode, window: "\(poolSize[0])×\(poolSize[1]) window")
        var shape = input.shape
        shape[layout.heightAxis] = .known(spatial.outputHeight)
        shape[layout.widthAxis] = .known(spatial.outputWidth)
        return PoolingGeometry(layout: layout, spatial: spatial, ceilMode: ceilMode,
                               countIncludePad: countIncludePad, outputShape: shape)
    }
}
