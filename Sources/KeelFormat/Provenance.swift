import KeelIR

/// Remembers where spatial dimensions came from, so a shape error deep in a head can point back
/// at the input declaration: "25,088 = 7·7·512 comes from a 224×224 input".
///
/// Each image value keeps the windows (kernel span, stride, padding) applied along height and
/// width since the input; inverting them gives the input size that yields a wanted feature map.
struct Provenance {
    /// One step along a spatial axis: a sliding window, or zero padding that adds `total` pixels.
    enum Window {
        case sliding(span: Int, stride: Int, same: Bool)
        case padding(total: Int)
    }

    struct Trace {
        var input: String
        var location: SourceLocation?
        var height: [Window] = []
        var width: [Window] = []
    }

    /// A rank-2 value that a flatten made from an image, with that image's shape and trace.
    struct Flattened {
        var source: String
        var shape: Shape
        var layout: Layout
        var trace: Trace?
    }

    private var traces: [String: Trace] = [:]
    private var flattened: [String: Flattened] = [:]

    mutating func declare(_ input: InputInstance) {
        if input.layout != nil { traces[input.name] = Trace(input: input.name, location: input.location) }
    }

    /// Extends the traces through one translated layer.
    mutating func record(_ layer: LayerInstance, op: OpKind, arguments: LayerArguments, inputTypes: [TensorType],
                         layout: Layout?, output: TensorType) {
        let source = layer.inputs[0].name
        switch OpRegistry.schema(for: op).category {
        case .convolution, .pooling:
            // Windows slide over the image (conv2d, max/avg pooling); global pooling ends it.
            guard arguments.has("kernel_size") || arguments.has("pool_size"), var trace = traces[source] else { return }
            let isConvolution = op == .conv2d
            let kernel = arguments.integers(isConvolution ? "kernel_size" : "pool_size")
            let dilation = isConvolution ? arguments.integers("dilation") : [1, 1]
            let strides = arguments.has("strides") ? arguments.integers("strides") : kernel
            let same = arguments.word("padding") == "same"
            trace.height.append(.sliding(span: (kernel[0] - 1) * dilation[0] + 1, stride: strides[0], same: same))
            trace.width.append(.sliding(span: (kernel[1] - 1) * dilation[1] + 1, stride: strides[1], same: same))
            traces[layer.name] = trace
        case .dataMovement where op == .pad:
            guard var trace = traces[source] else { return }
            let (top, bottom, left, right) = LayerCatalog.zeroPadding(arguments)
            trace.height.append(.padding(total: top + bottom))
            trace.width.append(.padding(total: left + right))
            traces[layer.name] = trace
        case .view where op == .flatten:
            if let layout, inputTypes[0].shape.rank == 4 {
                flattened[layer.name] = Flattened(source: source, shape: inputTypes[0].shape, layout: layout, trace: traces[source])
            }
        case .view where op == .reshape, .matrixProduct:
            return
        case .unaryElementwise, .broadcastElementwise, .normalization, .reduction, .view, .dataMovement:
            // Element-wise layers, normalisation, softmax, dropout and concat keep the geometry of their first input.
            if output.shape.rank == 4, let trace = traces[source] { traces[layer.name] = trace }
            if let origin = flattened[source], output.shape == inputTypes[0].shape { flattened[layer.name] = origin }
        }
    }

    /// Adds notes explaining a shape error, when the layer is a dense whose kernel width is pinned.
    func explain(_ diagnostic: Diagnostic, layer: LayerInstance, arguments: LayerArguments, inputTypes: [TensorType],
                 graph: Graph) -> Diagnostic {
        var result = diagnostic
        if result.location == nil { result.location = layer.location }
        // Merges: say where each disagreeing input was made.
        if layer.inputs.count > 1 {
            for (reference, type) in zip(layer.inputs, inputTypes) {
                let origin = graph.node(named: reference.name)?.location ?? graph.inputs.first { $0.name == reference.name }?.location
                result = result.adding(Diagnostic.Note("'\(reference.name)' is \(type.shape), made here", at: origin))
            }
        }
        guard layer.type == "dense", let pinned = arguments.optionalInteger("input_dim"), let input = inputTypes.first else { return result }
        let inputName = layer.inputs[0].name
        if input.shape.rank > 2 {
            var message = "'\(layer.name)' pins its kernel to \(formatCount(pinned)) input features with input_dim, but a dense layer reads only the last axis of \(input.shape); add a flatten layer before it"
            if input.shape.dims.dropFirst().compactMap(\.value).reduce(1, *) == pinned, input.shape.dims.dropFirst().allSatisfy({ !$0.isSymbolic }) {
                message += " (flattening gives exactly \(formatCount(pinned)))"
            }
            return result.adding(Diagnostic.Note(message, at: layer.location))
        }
        guard let origin = flattened[inputName],
              let height = origin.shape[origin.layout.heightAxis].value, let width = origin.shape[origin.layout.widthAxis].value,
              let channels = origin.shape[origin.layout.channelAxis].value, channels > 0, pinned % channels == 0,
              let (wantedHeight, wantedWidth) = Provenance.featureMap(area: pinned / channels, aspect: (height, width)) else {
            return result
        }
        let product = "\(formatCount(pinned)) = \(wantedHeight)·\(wantedWidth)·\(channels)"
        guard let trace = origin.trace, let inputShape = graph.inputs.first(where: { $0.name == trace.input })?.type.shape,
              let inputLayout = graph.inputs.first(where: { $0.name == trace.input })?.layout,
              let actualHeight = inputShape[inputLayout.heightAxis].value, let actualWidth = inputShape[inputLayout.widthAxis].value else {
            return result.adding(Diagnostic.Note("\(product) needs a \(wantedHeight)×\(wantedWidth) feature map but '\(origin.source)' is \(height)×\(width)", at: layer.location))
        }
        let neededHeight = Provenance.inputExtent(producing: wantedHeight, through: trace.height)
        let neededWidth = Provenance.inputExtent(producing: wantedWidth, through: trace.width)
        return result.adding(Diagnostic.Note(
            "\(product) comes from a \(neededHeight)×\(neededWidth) input; '\(trace.input)' is \(actualHeight)×\(actualWidth), so '\(origin.source)' is \(height)×\(width)·\(channels) = \(formatCount(height * width * channels))",
            at: trace.location))
    }

    /// Height and width with the given area and the same aspect ratio as `aspect`.
    static func featureMap(area: Int, aspect: (Int, Int)) -> (Int, Int)? {
        guard area > 0, aspect.0 > 0, aspect.1 > 0 else { return nil }
        for height in 1...area where area % height == 0 {
            let width = area / height
            if height * aspect.1 == width * aspect.0 { return (height, width) }
        }
        return nil
    }

    /// An input extent that the windows reduce to `output`, found by running them backwards.
    /// A window maps a range of inputs to one output (same: ((out-1)·stride, out·stride];
    /// valid: [(out-1)·stride + span, … + stride - 1]); the first multiple of the stride in it is
    /// the size networks are designed for (224 for VGG16's 7, 230 before ResNet's 7×7/2 conv).
    static func inputExtent(producing output: Int, through windows: [Window]) -> Int {
        windows.reversed().reduce(output) { extent, window in
            switch window {
            case .padding(let total):
                return extent - total
            case .sliding(let span, let stride, let same):
                let lowest = same ? (extent - 1) * stride + 1 : (extent - 1) * stride + span
                let candidates = lowest..<(lowest + stride)
                return candidates.first { $0 % stride == 0 } ?? lowest
            }
        }
    }
}
