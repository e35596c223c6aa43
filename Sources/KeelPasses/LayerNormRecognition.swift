import KeelIR

/// Replaces layer normalisation written out in primitive ops with one `layer_norm` node, which
/// reads each row twice instead of sweeping the whole tensor through two reductions and half a
/// dozen element-wise ops. The exporters' spellings come down to three shapes:
///
///     centred × factor   (x - mean(x)) · gamma / sqrt(var(x) + ε)      PyTorch decomposed, tf2onnx's
///     centred ÷ deviation (x - mean(x)) / sqrt(var(x) + ε)             FusedBatchNorm once imported
///     affine              x · f + (beta - mean(x) · f)   or  - mean(x) · f   tf.nn.batch_normalization
///
/// each optionally followed by `· gamma` and `+ beta`, where var(x) is mean((x - mean(x))²) or
/// Σ(x - mean(x))² / n and 1/sqrt is spelled Reciprocal(Sqrt), Div or Pow(-0.5).
///
/// Needs: shape-inferred graph, constants folded (tf2onnx's divisor n arrives as a Cast).
/// Legal when every statistic is over the same axes of the same x, those axes are x's trailing
/// axes (unit axes aside, all of known extent) or one axis (transposed last and back), each statistic broadcasts exactly as a kept-dims
/// reduction would, and ε, gamma and beta are constants (gamma and beta per feature, or one
/// value everywhere). What does not match is left alone: the primitive ops compute the same.
public struct LayerNormRecognition: Pass {
    public var name: String { "layer-norm-recognition" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "layer norms recognised")
        for candidate in graph.nodes where [.mul, .div, .add].contains(candidate.op) {
            // An earlier match may have replaced this node already.
            guard let node = editor.node(named: candidate.name), node.op == candidate.op,
                  let match = LayerNormMatcher(editor: editor).match(node) else { continue }
            let gamma = editor.addConstant("\(match.last.name)/gamma", floats: match.gamma, shape: match.featureShape,
                                           role: .gamma, trainable: false, location: match.last.locations.first)
            let beta = editor.addConstant("\(match.last.name)/beta", floats: match.beta, shape: match.featureShape,
                                          role: .beta, trainable: false, location: match.last.locations.first)
            var locations = node.locations
            for location in match.last.locations where !locations.contains(location) { locations.append(location) }
            let attributes = Attributes(["epsilon": .float(match.epsilon), "axis": .int(match.axis)])
            if let channel = match.channel {
                var order = Array(0..<match.rank)
                order.remove(at: channel)
                order.append(channel)
                let inverse = (0..<match.rank).map { order.firstIndex(of: $0) ?? $0 }
                let moved = editor.unusedName("\(match.last.name)/channels_last")
                let normalised = editor.unusedName("\(match.last.name)/normalised")
                editor.insert(Node(name: moved, op: .transpose, inputs: [match.x], outputs: [moved],
                                   attributes: Attributes(["perm": .ints(order)]), locations: locations), before: match.last.name)
                editor.insert(Node(name: normalised, op: .layerNorm, inputs: [moved, gamma, beta], outputs: [normalised],
                                   attributes: attributes, locations: locations), before: match.last.name)
                editor.update(Node(name: match.last.name, op: .transpose, inputs: [normalised], outputs: [match.last.outputs[0]],
                                   attributes: Attributes(["perm": .ints(inverse)]), locations: locations))
            } else {
                editor.update(Node(name: match.last.name, op: .layerNorm, inputs: [match.x, gamma, beta], outputs: [match.last.outputs[0]],
                                   attributes: attributes, locations: locations))
            }
            if let view = match.view {
                for name in match.afterView { editor.removeNode(named: name) }
                editor.forward(match.tail.outputs[0], to: view.outputs[0])
            }
            statistic.rewrites += 1
        }
        // The statistics' nodes now feed nothing: dropped here so the log counts them.
        return try editor.finishedRewrite(of: graph, statistic)
    }
}

/// What a recognised layer norm becomes.
struct LayerNormMatch {
    var x: String
    var axis: Int
    /// The normalised axis when it is not trailing: x is transposed to put it last, and back.
    var channel: Int?
    var rank: Int
    var epsilon: Float
    /// The normalised extents (x's shape from `axis` on), which gamma and beta take.
    var featureShape: [Int]
    var gamma: [Float]
    var beta: [Float]
    /// The node whose output the layer norm takes over.
    var last: Node
    /// A reshape after `last` whose scales and shifts were folded in too: the layer norm then
    /// feeds the reshape, whose output takes over `tail`'s, and `afterView` is removed.
    var view: Node?
    var tail: Node
    var afterView: [String]
}

/// Which tensor a statistic is taken over, and over which of its axes.
struct RowStatistics: Equatable {
    var x: String
    var axes: Set<Int>
}

/// The structural questions the rewrite asks, over a graph it does not change.
struct LayerNormMatcher {
    let editor: GraphEditor
    private var graph: Graph { editor.graph }

    init(editor: GraphEditor) { self.editor = editor }

    func match(_ node: Node) -> LayerNormMatch? {
        guard let found = core(node), let xShape = shape(found.statistics.x),
              graph.type(of: found.statistics.x)?.dtype == .float32 else { return nil }
        // Trailing axes normalise in place; one channel axis of an NCHW tensor (tf2onnx moves
        // Keras's rank-4 LayerNormalization there) goes last and back through transposes.
        var channel: Int? = nil
        var axis: Int
        if let trailing = trailingAxis(found.statistics, xShape) {
            axis = trailing
        } else if let single = channelAxis(found.statistics, xShape) {
            (channel, axis) = (single, single)
        } else { return nil }
        let featureAxes = channel.map { [$0] } ?? Array(axis..<xShape.rank)
        let featureShape = featureAxes.compactMap { xShape[$0].value }
        let features = featureShape.reduce(1, *)
        guard featureShape.count == featureAxes.count, features > 0,
              var scales = found.gamma.resolved(features, xShape, featureAxes),
              var shifts = found.beta.resolved(features, xShape, featureAxes) else { return nil }
        var last = node, tail = node
        var view: Node? = nil
        var afterView: [String] = []
        var (currentShape, currentAxes) = (xShape, featureAxes)
        // Per-feature scales and shifts after the core fold into gamma and beta, also across one
        // reshape that keeps the normalised elements together (tf2onnx's reshape back to tokens).
        following: while let next = editor.soleConsumer(of: tail.outputs[0]) {
            if view == nil, channel == nil, [.reshape, .squeeze, .unsqueeze, .flatten].contains(next.op),
               let viewShape = shape(next.outputs[0]), let viewAxis = trailingGroup(viewShape, features) {
                (view, tail, currentShape, currentAxes) = (next, next, viewShape, Array(viewAxis..<viewShape.rank))
                continue
            }
            guard next.inputs.count == 2, [.mul, .add, .sub].contains(next.op), shape(next.outputs[0]) == currentShape else { break }
            let other = next.inputs[0] == tail.outputs[0] ? next.inputs[1] : next.inputs[0]
            guard other != tail.outputs[0], let values = perFeature(other)?.resolved(features, currentShape, currentAxes) else { break }
            switch next.op {
            case .mul:
                scales = zip(scales, values).map { $0 * $1 }
                shifts = zip(shifts, values).map { $0 * $1 }
            case .add:
                shifts = zip(shifts, values).map { $0 + $1 }
            default:
                guard next.inputs[0] == tail.outputs[0] else { break following }   // beta - y is not a layer norm
                shifts = zip(shifts, values).map { $0 - $1 }
            }
            tail = next
            if view == nil { last = next } else { afterView.append(next.name) }
        }
        if afterView.isEmpty { view = nil }
        return LayerNormMatch(x: found.statistics.x, axis: channel == nil ? axis : -1, channel: channel, rank: xShape.rank,
                              epsilon: found.epsilon, featureShape: featureShape,
                              gamma: scales, beta: shifts, last: last, view: view, tail: tail, afterView: afterView)
    }

    /// The axis from which `shape`'s trailing extents hold exactly `features` elements, if any.
    private func trailingGroup(_ shape: Shape, _ features: Int) -> Int? {
        var product = 1
        for axis in stride(from: shape.rank - 1, through: 0, by: -1) {
            guard let extent = shape[axis].value else { return nil }
            product *= extent
            if product == features { return axis }
            if product > features { return nil }
        }
        return nil
    }

    /// A core shape found: over what, with which ε, and the gamma and beta it already applies.
    private struct Core {
        var statistics: RowStatistics
        var epsilon: Float
        var gamma: FeatureValues
        var beta: FeatureValues
    }

    // MARK: The three core shapes

    private func core(_ node: Node) -> Core? {
        guard node.inputs.count == 2, let outputShape = shape(node.outputs[0]) else { return nil }
        let (left, right) = (node.inputs[0], node.inputs[1])
        switch node.op {
        case .mul:
            // (x - mean) · factor, either order.
            for (centredValue, factorValue) in [(left, right), (right, left)] {
                guard let statistics = centred(centredValue), shape(statistics.x) == outputShape,
                      let factor = factor(factorValue, statistics) else { continue }
                return Core(statistics: statistics, epsilon: factor.epsilon, gamma: factor.gamma, beta: .uniform(0))
            }
        case .div:
            // (x - mean) / sqrt(var + ε)
            guard let statistics = centred(left), shape(statistics.x) == outputShape,
                  broadcastsAsStatistic(right, statistics),
                  let root = producer(source(right), .sqrt), let epsilon = epsilonSum(root.inputs[0], statistics) else { return nil }
            return Core(statistics: statistics, epsilon: epsilon, gamma: .uniform(1), beta: .uniform(0))
        case .add:
            // x · f + (beta - mean · f), or x · f + (-(mean · f)).
            for (scaledValue, shiftValue) in [(left, right), (right, left)] {
                guard let scaled = editor.producer(of: scaledValue), scaled.op == .mul,
                      let shift = editor.producer(of: shiftValue) else { continue }
                for (x, factorValue) in [(scaled.inputs[0], scaled.inputs[1]), (scaled.inputs[1], scaled.inputs[0])] {
                    guard shape(x) == outputShape else { continue }
                    let meanTimesFactor: String
                    var beta = FeatureValues.uniform(0)
                    if shift.op == .neg {
                        meanTimesFactor = shift.inputs[0]
                    } else if shift.op == .sub, let values = perFeature(shift.inputs[0]) {
                        meanTimesFactor = shift.inputs[1]
                        beta = values
                    } else { continue }
                    guard let product = editor.producer(of: meanTimesFactor), product.op == .mul,
                          product.inputs.contains(factorValue) else { continue }
                    let meanValue = product.inputs[0] == factorValue ? product.inputs[1] : product.inputs[0]
                    guard let statistics = mean(meanValue), statistics.x == x, broadcastsAsStatistic(meanValue, statistics),
                          let factor = factor(factorValue, statistics) else { continue }
                    return Core(statistics: statistics, epsilon: factor.epsilon, gamma: factor.gamma, beta: beta)
                }
            }
        default: break
        }
        return nil
    }

    // MARK: Statistics

    /// mean(x) over some axes: a reduce_mean, or a global average pool (which keeps its dims).
    func mean(_ value: String) -> RowStatistics? {
        guard let node = editor.producer(of: source(value)), let x = node.inputs.first, let xShape = shape(x) else { return nil }
        switch node.op {
        case .reduceMean: return reduction(node).map { RowStatistics(x: x, axes: $0) }
        case .globalAvgPool2d where xShape.rank == 4:
            let layout = (try? node.attributeReader.string("layout")) ?? "nhwc"
            return RowStatistics(x: x, axes: layout == "nchw" ? [2, 3] : [1, 2])
        default: return nil
        }
    }

    /// x - mean(x), with the mean broadcasting back over the reduced axes.
    func centred(_ value: String) -> RowStatistics? {
        guard let node = editor.producer(of: value), node.op == .sub, node.inputs.count == 2,
              let statistics = mean(node.inputs[1]), statistics.x == node.inputs[0],
              broadcastsAsStatistic(node.inputs[1], statistics) else { return nil }
        return statistics
    }

    /// var(x): mean of (x - mean)² (as d·d or d^2), or Σ(x - mean)² / n.
    func isVariance(_ value: String, _ statistics: RowStatistics) -> Bool {
        guard let node = editor.producer(of: source(value)) else { return false }
        switch node.op {
        case .reduceMean:
            guard reduction(node) == statistics.axes, let square = editor.producer(of: node.inputs[0]) else { return false }
            if square.op == .mul, square.inputs.count == 2, square.inputs[0] == square.inputs[1] {
                return centred(square.inputs[0]) == statistics
            }
            if square.op == .pow, uniformValue(square.inputs[1]) == 2 { return centred(square.inputs[0]) == statistics }
            return false
        case .div:
            guard keepsShape(node, of: node.inputs[0]), let sum = editor.producer(of: source(node.inputs[0])),
                  sum.op == .reduceSumSquare, reduction(sum) == statistics.axes, centred(sum.inputs[0]) == statistics,
                  let count = reducedCount(statistics), uniformValue(node.inputs[1]) == Float(count) else { return false }
            return true
        default: return false
        }
    }

    /// var(x) + ε; returns ε.
    func epsilonSum(_ value: String, _ statistics: RowStatistics) -> Float? {
        guard let node = editor.producer(of: source(value)), node.op == .add, node.inputs.count == 2 else { return nil }
        for (variance, epsilon) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
            if keepsShape(node, of: variance), let value = uniformValue(epsilon), value >= 0, isVariance(variance, statistics) {
                return value
            }
        }
        return nil
    }

    /// c / sqrt(var + ε) in its spellings; returns ε and c (1 when absent).
    func inverseDeviation(_ value: String, _ statistics: RowStatistics) -> (epsilon: Float, scale: Float)? {
        guard let node = editor.producer(of: source(value)) else { return nil }
        switch node.op {
        case .reciprocal:
            guard let root = producer(source(node.inputs[0]), .sqrt), let epsilon = epsilonSum(root.inputs[0], statistics) else { return nil }
            return (epsilon, 1)
        case .div where node.inputs.count == 2:
            guard keepsShape(node, of: node.inputs[1]), let scale = uniformValue(node.inputs[0]),
                  let root = producer(source(node.inputs[1]), .sqrt), let epsilon = epsilonSum(root.inputs[0], statistics) else { return nil }
            return (epsilon, scale)
        case .pow where node.inputs.count == 2:
            guard uniformValue(node.inputs[1]) == -0.5, keepsShape(node, of: node.inputs[0]),
                  let epsilon = epsilonSum(node.inputs[0], statistics) else { return nil }
            return (epsilon, 1)
        case .mul where node.inputs.count == 2:
            for (inner, constant) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
                if keepsShape(node, of: inner), let scale = uniformValue(constant), let found = inverseDeviation(inner, statistics) {
                    return (found.epsilon, found.scale * scale)
                }
            }
            return nil
        default: return nil
        }
    }

    /// gamma / sqrt(var + ε), gamma per feature or one value: the row part must broadcast as a statistic.
    func factor(_ value: String, _ statistics: RowStatistics) -> (epsilon: Float, gamma: FeatureValues)? {
        if broadcastsAsStatistic(value, statistics), let found = inverseDeviation(value, statistics) {
            return (found.epsilon, .uniform(found.scale))
        }
        guard let node = editor.producer(of: value), node.op == .mul, node.inputs.count == 2 else { return nil }
        for (row, feature) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
            guard broadcastsAsStatistic(row, statistics), let found = inverseDeviation(row, statistics),
                  let gamma = perFeature(feature) else { continue }
            return (found.epsilon, gamma.scaled(by: found.scale))
        }
        return nil
    }

    // MARK: Shapes and constants

    /// Follows order-preserving views (reshape, squeeze, unsqueeze, flatten, identity) back to their source.
    func source(_ value: String) -> String {
        var current = value
        while let node = editor.producer(of: current), [.reshape, .squeeze, .unsqueeze, .flatten, .identity].contains(node.op),
              let input = node.inputs.first {
            current = input
        }
        return current
    }

    private func producer(_ value: String, _ op: OpKind) -> Node? {
        guard let node = editor.producer(of: value), node.op == op, !node.inputs.isEmpty else { return nil }
        return node
    }

    func shape(_ value: String) -> Shape? { graph.type(of: value)?.shape }

    /// Whether an element-wise node's output has exactly its statistic operand's shape, so
    /// constants combined with a statistic never broadcast it into something else.
    private func keepsShape(_ node: Node, of operand: String) -> Bool {
        guard let operandShape = shape(operand) else { return false }
        return shape(node.outputs[0]) == operandShape
    }

    /// The axes a reduction node reduces, normalised; nil when unreadable.
    private func reduction(_ node: Node) -> Set<Int>? {
        guard let input = node.inputs.first, let rank = shape(input)?.rank else { return nil }
        guard let axes = (try? node.attributeReader.optionalInts("axes")) ?? Optional(Array(0..<rank)) else { return nil }
        let resolved = axes.map { $0 < 0 ? $0 + rank : $0 }
        guard resolved.allSatisfy({ $0 >= 0 && $0 < rank }) else { return nil }
        return Set(resolved)
    }

    /// Whether `value` (a statistic) broadcasts against x exactly as the kept-dims reduction does:
    /// equal shapes once leading 1s are dropped.
    func broadcastsAsStatistic(_ value: String, _ statistics: RowStatistics) -> Bool {
        guard let valueShape = shape(value), let xShape = shape(statistics.x) else { return false }
        let kept = xShape.dims.enumerated().map { statistics.axes.contains($0.offset) ? Dim.known(1) : $0.element }
        func trimmed(_ dims: [Dim]) -> [Dim] { Array(dims.drop { $0 == .known(1) }) }
        return trimmed(valueShape.dims) == trimmed(kept)
    }

    /// The product of the reduced extents, when all are known.
    private func reducedCount(_ statistics: RowStatistics) -> Int? {
        guard let xShape = shape(statistics.x) else { return nil }
        var count = 1
        for axis in statistics.axes {
            guard let extent = xShape[axis].value else { return nil }
            count *= extent
        }
        return count
    }

    /// The layer norm's axis: the reduced axes must be x's trailing ones, unit axes aside.
    private func trailingAxis(_ statistics: RowStatistics, _ xShape: Shape) -> Int? {
        let nonUnit = xShape.dims.indices.filter { xShape[$0] != .known(1) }
        let lastKept = nonUnit.filter { !statistics.axes.contains($0) }.max() ?? -1
        let firstReduced = nonUnit.filter { statistics.axes.contains($0) }.min() ?? xShape.rank
        guard lastKept < firstReduced, lastKept + 1 < xShape.rank else { return nil }
        return lastKept + 1
    }

    /// The one axis of known extent a statistic reduces (unit axes aside) when it is not trailing.
    private func channelAxis(_ statistics: RowStatistics, _ xShape: Shape) -> Int? {
        let reduced = statistics.axes.filter { xShape[$0] != .known(1) }
        guard reduced.count == 1, let axis = reduced.first, xShape[axis].value != nil else { return nil }
        return axis
    }

    /// One float everywhere: a constant whose elements are all equal, or an Expand of one.
    func uniformValue(_ value: String) -> Float? {
        let origin = source(value)
        if let constant = graph.constants[origin], let data = constant.data, constant.type.dtype == .float32 {
            let values = data.floats()
            guard let first = values.first, values.allSatisfy({ $0 == first }) else { return nil }
            return first
        }
        if let node = editor.producer(of: origin), node.op == .expand { return uniformValue(node.inputs[0]) }
        return nil
    }

    /// A uniform value or a float constant; `FeatureValues.resolved` checks that it varies only
    /// along the normalised axes.
    func perFeature(_ value: String) -> FeatureValues? {
        if let uniform = uniformValue(value) { return .uniform(uniform) }
        guard let constant = graph.constants[value], let data = constant.data, constant.type.dtype == .float32 else { return nil }
        return .tensor(data.floats(), shape: data.shape)
    }
}

/// Gamma or beta as found: one value, or a constant tensor that must broadcast only along the
/// normalised axes.
enum FeatureValues {
    case uniform(Float)
    case tensor([Float], shape: [Int])

    func scaled(by factor: Float) -> FeatureValues {
        switch self {
        case .uniform(let value): return .uniform(value * factor)
        case .tensor(let values, let shape): return .tensor(values.map { $0 * factor }, shape: shape)
        }
    }

    /// One value per normalised element (row-major over `featureAxes` of x), or nil when the
    /// tensor would broadcast along a row axis or over a normalised axis it does not span.
    func resolved(_ features: Int, _ xShape: Shape, _ featureAxes: [Int]) -> [Float]? {
        switch self {
        case .uniform(let value): return Array(repeating: value, count: features)
        case .tensor(let values, let shape):
            guard shape.count <= xShape.rank else { return nil }
            let padded = Array(repeating: 1, count: xShape.rank - shape.count) + shape
            for (position, extent) in padded.enumerated() {
                if featureAxes.contains(position) { guard xShape[position] == .known(extent) else { return nil } }
                else { guard extent == 1 else { return nil } }
            }
            return values.count == features ? values : nil
        }
    }
}
