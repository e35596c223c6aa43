import KeelIR

/// Removes the layout round trip tf2onnx emits around a Keras model: NHWC input ->
/// Transpose(0,3,1,2) -> NCHW conv2d/pool/BN... -> Transpose(0,2,3,1). The NCHW region between
/// the transposes is rewritten to NHWC (`layout` attributes, BN axis, concat axis, per-channel
/// constants), and both transposes vanish. A region that ends in a Flatten (or a Reshape to
/// [N, C·H·W]) before a dense instead of a transpose keeps its results by permuting the dense
/// kernel's rows from C·H·W to H·W·C order. When H = W = 1 (after global pooling) the two
/// layouts hold the same bytes, so a Squeeze, Flatten or Reshape there ends the region freely.
///
/// A pad in the region has its per-axis amounts permuted, a slice, gather, concat or split its axes, other reductions over H and W reduce
/// axes 1 and 2, and a mean over them (PyTorch's squeeze-excitation) becomes a global average
/// pool. A [N,C,1,1] value computed outside the region (tf2onnx's squeeze-excitation gate, which
/// goes through Squeeze and Reshape) joins it through a reshape to [N,1,1,C]: the same bytes.
///
/// Needs: shape-inferred graph; bound dense kernels for the Flatten exit. Legal when every
/// NCHW value in the region is read only by ops with an NHWC form, by an inverse transpose, or
/// by a Flatten whose only reader is a dense owning its kernel. An NCHW value that is a graph
/// output (a PyTorch backbone's feature map) stays NCHW through a transpose at the end; one read
/// by an op without an NHWC form reaches it through a transpose back when the region has more
/// convolutions and pools than such transposes. Convolutions behind an op without an NHWC form
/// (MaxViT's MBConvs after its attention's reshapes) start a region behind an inserted
/// transpose, kept when it pays the same way.
public struct LayoutPropagation: Pass {
    public var name: String { "layout-propagation" }

    public init() {}

    static let toNCHW = [0, 3, 1, 2]
    static let toNHWC = [0, 2, 3, 1]
    /// Where NCHW axis i lives in NHWC.
    static let nhwcAxis = [0, 3, 1, 2]

    /// What the rewrite touches, found before anything changes.
    struct Region {
        var entries: [String] = []
        var nodes: [String] = []
        var values = Set<String>()
        var exits: [String] = []
        /// Flatten (or reshape) nodes, the dense after each, and the NCHW extents they see.
        var flattens: [(flatten: String, dense: String, chw: [Int])] = []
        /// [N,C,1,1] values from outside the region, each with a region node that reads it.
        var pixelEntries: [(reader: String, value: String)] = []
        /// NCHW values that are graph outputs: each leaves the region through a transpose back.
        var outputs: [String] = []
        /// Values read by an op without an NHWC form (MaxViT's window partition, a softmax over
        /// channels), with those readers: each reads the value through a transpose back to NCHW.
        var boundaries: [(value: String, reader: String)] = []

        /// Whether the region computes enough in NHWC to pay for its transposes (one per boundary
        /// value, plus `inserted` entries): more convolutions and pools than transposes. A lone
        /// patch-embedding convolution before a reshape to tokens (ViT) stays NCHW as before; a
        /// MaxViT MBConv (five convolutions and a pool between two reshapes) turns NHWC.
        func paysForBoundaries(inserted: Int, in editor: GraphEditor) -> Bool {
            let layers = nodes.filter { name in
                guard let op = editor.node(named: name)?.op else { return false }
                return op == .conv2d || op == .maxPool2d || op == .avgPool2d
            }
            return layers.count > Set(boundaries.map(\.value)).count + inserted
        }
    }

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "regions turned NHWC")
        var explanations: [String] = []
        var seen = Set<String>()
        for name in graph.nodes.map(\.name) where !seen.contains(name) {
            guard let node = editor.node(named: name), isTranspose(node, Self.toNCHW, in: editor.graph) else { continue }
            switch grow(from: node, in: editor) {
            case .failure(let rejection):
                seen.insert(node.name)
                explanations.append("kept '\(node.name)': \(rejection.message)")
            case .success(let region):
                seen.formUnion(region.entries)
                statistic.weightBytesChanged += apply(region, in: &editor)
                statistic.rewrites += 1
                statistic.nodesRemoved += region.entries.count + region.exits.count
            }
        }
        // Convolutions whose NCHW input comes from an op without an NHWC form (MaxViT's MBConvs
        // after the grid attention's reshapes) start a region of their own behind a transpose to
        // NHWC, tried on a copy and kept only when the region grows.
        var tried = Set<String>()
        for name in editor.graph.nodes.map(\.name) {
            guard let node = editor.node(named: name), node.op == .conv2d,
                  (try? node.attributeReader.string("layout")) == "nchw", let first = node.inputs.first,
                  case let input = regionSource(of: first, in: editor), tried.insert(input).inserted,
                  let type = editor.graph.valueTypes[input], type.shape.rank == 4,
                  let nchw = Shape(Array(type.shape.dims.dropFirst())).knownExtents, nchw[1] * nchw[2] > 1,
                  let producer = editor.producer(of: input), !isTranspose(producer, Self.toNCHW, in: editor.graph)
            else { continue }
            var trial = GraphEditor(editor.graph)
            let (toNHWC, entry) = (trial.unusedName("\(input)/to_nhwc"), trial.unusedName("\(input)/nchw"))
            let readers = editor.consumers(of: input)
            for var reader in readers {
                reader.inputs = reader.inputs.map { $0 == input ? entry : $0 }
                trial.update(reader)
            }
            let before = trial.graph.nodes.first { node in readers.contains { $0.name == node.name } }?.name ?? name
            trial.insert(Node(name: toNHWC, op: .transpose, inputs: [input], outputs: [toNHWC],
                              attributes: Attributes(["perm": .ints(Self.toNHWC)]), locations: node.locations), before: before)
            trial.insert(Node(name: entry, op: .transpose, inputs: [toNHWC], outputs: [entry],
                              attributes: Attributes(["perm": .ints(Self.toNCHW)]), locations: node.locations), before: before)
            trial.graph.valueTypes[toNHWC] = TensorType(type.dtype, Shape([type.shape[0]] + [nchw[1], nchw[2], nchw[0]].map(Dim.known)))
            trial.graph.valueTypes[entry] = type
            guard let entryNode = trial.node(named: entry) else { continue }
            switch grow(from: entryNode, in: trial, inserted: 1) {
            case .failure(let rejection):
                explanations.append("kept '\(name)' NCHW: \(rejection.message)")
            case .success(let region):
                statistic.weightBytesChanged += apply(region, in: &trial)
                statistic.rewrites += 1
                statistic.nodesRemoved += region.entries.count + region.exits.count
                editor = trial
            }
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// Where a region reaching `value` starts: back through the ops with an NHWC form and one
    /// computed input (MaxViT's pre-norm BatchNorm before its first convolution), so that the
    /// block's shortcut, which reads the same source, joins the region too.
    private func regionSource(of value: String, in editor: GraphEditor) -> String {
        var current = value
        for _ in 0..<8 {
            guard let producer = editor.producer(of: current) else { return current }
            let computed = producer.presentInputs.filter { editor.graph.constants[$0] == nil }
            guard computed.count == 1, let only = computed.first, editor.graph.valueTypes[only]?.shape.rank == 4,
                  convertible(producer, reading: only, region: Region(), in: editor) == false else { return current }
            current = only
        }
        return current
    }

    private func isTranspose(_ node: Node, _ perm: [Int], in graph: Graph) -> Bool {
        TransposeCancellation.permutation(of: node, in: graph) == perm
    }

    /// Collects the NCHW region reachable from `entry`, or says why it cannot become NHWC.
    /// `inserted`: transposes this pass added in front of the region (1 for a region started at a
    /// convolution behind an op without an NHWC form), which the region must pay for too.
    private func grow(from entry: Node, in editor: GraphEditor, inserted: Int = 0) -> Result<Region, Rejection> {
        var region = Region(entries: [entry.name], values: [entry.outputs[0]])
        var worklist = [entry.outputs[0]]
        var boundaryMessage: String?
        var pending: [String: String] = [:]
        repeat {
            while let value = worklist.popLast() {
                if editor.isGraphOutput(value) {
                    if region.entries.contains(where: { editor.node(named: $0)?.outputs[0] == value }) {
                        return .failure(Rejection("NCHW value '\(value)' is a graph output"))
                    }
                    if !region.outputs.contains(value) { region.outputs.append(value) }
                }
                for reader in editor.consumers(of: value) {
                    if region.nodes.contains(reader.name) || region.exits.contains(reader.name)
                        || region.flattens.contains(where: { $0.flatten == reader.name }) { continue }
                    if isTranspose(reader, Self.toNHWC, in: editor.graph) {
                        if editor.isGraphOutput(reader.outputs[0]) && region.entries.contains(where: { editor.node(named: $0)?.outputs[0] == value }) {
                            return .failure(Rejection("graph output '\(reader.outputs[0])' is the input transposed twice"))
                        }
                        region.exits.append(reader.name)
                        continue
                    }
                    if let flatten = flattenExit(reader, reading: value, in: editor) {
                        switch flatten {
                        case .success(let exit): region.flattens.append(exit)
                        case .failure(let rejection): return .failure(rejection)
                        }
                        continue
                    }
                    guard let layoutFree = convertible(reader, reading: value, region: region, in: editor) else {
                        let entryValue = region.entries.contains { editor.node(named: $0)?.outputs[0] == value }
                        let message = "NCHW value '\(value)' feeds \(reader.op.rawValue) '\(reader.name)', which has no NHWC form here"
                        if entryValue { return .failure(Rejection(message)) }
                        region.boundaries.append((value, reader.name))
                        boundaryMessage = boundaryMessage ?? message
                        continue
                    }
                    if let missing = admit(reader, layoutFree: layoutFree, acceptingPixels: false, into: &region, worklist: &worklist, in: editor) {
                        // A value computed from further entry transposes (ConvNeXt's layer-scale mul
                        // after its branch's transpose back to NCHW) joins through those entries; the
                        // reader is visited again once the region reaches it.
                        for producer in entryTransposes(behind: missing, in: editor) ?? [] where !region.entries.contains(producer.name) {
                            region.entries.append(producer.name)
                            region.values.insert(producer.outputs[0])
                            worklist.append(producer.outputs[0])
                        }
                        pending[reader.name] = "\(reader.op.rawValue) '\(reader.name)' also reads '\(missing)', which is not NCHW from a transpose"
                        continue
                    }
                    pending[reader.name] = nil
                }
            }
            // What the region cannot reach now, it never will: a waiting reader may still take
            // [N,C,1,1] values from outside, and what it makes may let others in.
            for name in pending.keys.sorted() {
                guard let reader = editor.node(named: name),
                      let value = reader.presentInputs.first(where: region.values.contains),
                      let layoutFree = convertible(reader, reading: value, region: region, in: editor),
                      admit(reader, layoutFree: layoutFree, acceptingPixels: true, into: &region, worklist: &worklist, in: editor) == nil
                else { continue }
                pending[name] = nil
            }
        } while !worklist.isEmpty
        // A reader still waiting mixes region values with values from outside (EfficientViT's
        // residual add behind its attention's reshapes): it stays NCHW and reads the region's
        // values through transposes back, as an op without an NHWC form does, when that pays.
        let pendingReason = pending.sorted(by: { $0.key < $1.key }).first?.value
        for name in pending.keys.sorted() {
            guard let reader = editor.node(named: name) else { continue }
            for input in reader.presentInputs where region.values.contains(input) && !region.boundaries.contains(where: { $0 == (input, name) }) {
                // An entry transpose's own output has no NHWC value to transpose back.
                if region.entries.contains(where: { editor.node(named: $0)?.outputs[0] == input }), let pendingReason {
                    return .failure(Rejection(pendingReason))
                }
                region.boundaries.append((input, name))
            }
        }
        // A reader that joined the region later is no boundary.
        region.boundaries.removeAll { region.nodes.contains($0.reader) }
        if !region.boundaries.isEmpty, !region.paysForBoundaries(inserted: inserted, in: editor) {
            return .failure(Rejection(pendingReason ?? boundaryMessage ?? "its boundary transposes cost more than it computes"))
        }
        return .success(region)
    }

    /// Adds `reader` to the region when each of its computed inputs is in it, comes from an entry
    /// transpose (which joins too) or, with `acceptingPixels`, is [N,C,1,1]; otherwise returns
    /// the first input that is none of these.
    private func admit(_ reader: Node, layoutFree: Bool, acceptingPixels: Bool, into region: inout Region,
                       worklist: inout [String], in editor: GraphEditor) -> String? {
        // Another computed input is either a further entry transpose, or a value the region may
        // still reach by another path (a residual branch): then it waits.
        let others = reader.presentInputs.filter { !region.values.contains($0) && editor.graph.constants[$0] == nil }
        let entries = others.compactMap { editor.producer(of: $0) }.filter { isTranspose($0, Self.toNCHW, in: editor.graph) }
        let rest = others.filter { input in !entries.contains { $0.outputs.first == input } }
        if let missing = rest.first(where: { !acceptingPixels || !isPixelVector($0, in: editor.graph) }) { return missing }
        for producer in entries {
            region.entries.append(producer.name)
            region.values.insert(producer.outputs[0])
            worklist.append(producer.outputs[0])
        }
        region.pixelEntries += rest.map { (reader.name, $0) }
        region.nodes.append(reader.name)
        if !layoutFree {
            for output in reader.outputs where !output.isEmpty {
                region.values.insert(output)
                worklist.append(output)
            }
        }
        return nil
    }

    /// A rank-4 value with H = W = 1, whose NCHW and NHWC forms hold the same bytes.
    private func isPixelVector(_ value: String, in graph: Graph) -> Bool {
        guard !graph.inputs.contains(where: { $0.name == value }), let shape = graph.valueTypes[value]?.shape else { return false }
        return shape.rank == 4 && shape[2] == .known(1) && shape[3] == .known(1)
    }

    /// The entry transposes `value` is computed from through ops with an NHWC form (at most
    /// `entrySearchDepth` deep), or nil when it also depends on anything else (a graph input, an op
    /// without one, a longer path).
    private func entryTransposes(behind value: String, in editor: GraphEditor) -> [Node]? {
        var searched: [String: [Node]?] = [:]
        return entryTransposes(behind: value, in: editor, depth: Self.entrySearchDepth, searched: &searched)
    }

    /// Six ops separate ConvFormer's residual add from the transpose after its LayerNorm (a 1×1
    /// convolution, StarReLU's pow, mul and add, the 7×7 depthwise one, the 1×1 into the add);
    /// with 4, its blocks stayed NCHW behind 78 transposes (0.87× ONNX Runtime's speed).
    static let entrySearchDepth = 12

    private func entryTransposes(behind value: String, in editor: GraphEditor, depth: Int,
                                 searched: inout [String: [Node]?]) -> [Node]? {
        let key = "\(depth) \(value)"
        if let known = searched[key] { return known }
        let result = { () -> [Node]? in
            guard let producer = editor.producer(of: value) else { return nil }
            if isTranspose(producer, Self.toNCHW, in: editor.graph) { return [producer] }
            let computed = producer.presentInputs.filter { editor.graph.constants[$0] == nil }
            guard depth > 0, let first = computed.first,
                  convertible(producer, reading: first, region: Region(), in: editor) == false else { return nil }
            var found: [Node] = []
            for input in computed {
                guard let behind = entryTransposes(behind: input, in: editor, depth: depth - 1, searched: &searched) else { return nil }
                found += behind.filter { entry in !found.contains { $0.name == entry.name } }
            }
            return found
        }()
        searched[key] = .some(result)
        return result
    }

    /// Whether `node` has an NHWC form when `value` (and its other computed inputs) turn NHWC;
    /// nil when not, else whether its output is layout-free (global pooling to [N,C]).
    private func convertible(_ node: Node, reading value: String, region: Region, in editor: GraphEditor) -> Bool? {
        let reader = node.attributeReader
        let schema = reader.schema
        if schema.isLayoutAgnostic { return false }
        // An op that declares its layout computes the same in NHWC once told so; without
        // `keepdims` (global pooling) its [N, C] output has no layout left.
        if schema.attributeSpec("layout") != nil {
            guard node.inputs.first == value, (try? reader.string("layout")) == "nchw" else { return nil }
            guard schema.attributeSpec("keepdims") != nil else { return false }
            return !((try? reader.bool("keepdims")) ?? false)
        }
        switch schema.category {
        case .unaryElementwise, .convolution, .matrixProduct, .pooling:
            return nil
        case .reduction:
            // A reduction over H and W (the dynamo exporter's global average pool) reduces axes
            // 1 and 2 in NHWC; without kept dimensions its [N, C] output has no layout left.
            guard node.inputs.first == value, let shape = editor.graph.valueTypes[value]?.shape, shape.rank == 4,
                  let axes = try? reader.optionalInts("axes"),
                  Set(axes.compactMap { shape.normalizedAxis($0) }) == [2, 3], axes.count == 2 else { return nil }
            return !((try? reader.bool("keepdims")) ?? true)
        case .normalization:
            if node.op == .instanceNorm { return wholeImageNormalization(around: node, in: editor) != nil ? false : nil }
            guard node.op == .batchNorm, node.inputs.first == value,
                  let axis = try? reader.int("axis"), axis == 1 || axis == -3 else { return nil }
            return false
        case .broadcastElementwise:
            for input in node.presentInputs where editor.graph.constants[input] != nil {
                guard Self.nhwcShape(ofNCHWConstant: input, in: editor.graph) != nil else { return nil }
            }
            return editor.graph.valueTypes[node.outputs[0]]?.shape.rank == 4 ? false : nil
        case .dataMovement:
            // A pad (ResNet's ZeroPadding2D before its stem pool) pads the same axes once its
            // per-axis amounts are permuted.
            if node.op == .pad { return node.inputs.first == value && (try? reader.ints("pads"))?.count == 8 ? false : nil }
            // Slices (Keras's Cropping2D, PyTorch's channel split) and gathers with constant
            // indices (a channel shuffle, see ShuffleToGather) take the same entries along the
            // permuted axes.
            if node.op == .slice || node.op == .gather {
                guard node.inputs.first == value, editor.graph.valueTypes[value]?.shape.rank == 4,
                      editor.graph.valueTypes[node.outputs[0]]?.shape.rank == 4,
                      node.op == .slice || (node.inputs.count == 2 && editor.graph.constants[node.inputs[1]] != nil) else { return nil }
                return false
            }
            // A split (PyTorch's channel split as the dynamo exporter writes it) cuts the same
            // pieces along the permuted axis; each of its outputs joins the region.
            if node.op == .split {
                guard node.inputs.first == value, editor.graph.valueTypes[value]?.shape.rank == 4,
                      node.outputs.allSatisfy({ editor.graph.valueTypes[$0]?.shape.rank == 4 }) else { return nil }
                return false
            }
            guard node.op == .concat, node.presentInputs.allSatisfy({ editor.graph.constants[$0] == nil }) else { return nil }
            return false
        case .view:
            if node.op == .reshape, let sandwich = wholeImageNormalization(around: node, in: editor),
               [sandwich.flatten.name, sandwich.restore.name].contains(node.name) {
                return false
            }
            // With H = W = 1, NCHW and NHWC hold the same bytes: the global-pool-then-flatten tail.
            guard let shape = editor.graph.valueTypes[value]?.shape, shape.rank == 4,
                  shape[2] == .known(1), shape[3] == .known(1) else { return nil }
            if node.op == .squeeze {
                guard let axes = try? reader.optionalInts("axes") else { return true }
                let removed = Set(axes.compactMap { shape.normalizedAxis($0) })
                return removed.isSuperset(of: [2, 3]) ? true : nil
            }
            if node.op == .reshape {
                let target = (try? reader.ints("shape")) ?? []
                return target.dropFirst().contains(0) ? nil : true
            }
            if node.op == .flatten { return (try? reader.int("axis")) == 1 ? true : nil }
            return nil
        }
    }

    /// GroupNorm with one group as PyTorch exports it: a reshape of an image to [N, 1, C·H·W], an
    /// instance norm of that one channel, a reshape back to [N, C, H, W]. It normalises each image
    /// over all its values, whatever their order, so the sandwich computes the same on NHWC values
    /// with the last reshape's target permuted. `node` is any of the three; nil for anything else.
    /// (PoolFormer's norms kept the whole network NCHW: its 1×1 convolutions on the NCHW GEMM.)
    func wholeImageNormalization(around node: Node, in editor: GraphEditor) -> (flatten: Node, norm: Node, restore: Node)? {
        var flatten = node
        if node.op == .instanceNorm {
            guard let producer = editor.producer(of: node.inputs[0]) else { return nil }
            flatten = producer
        } else if node.op == .reshape, let producer = editor.producer(of: node.inputs[0]), producer.op == .instanceNorm,
                  let before = editor.producer(of: producer.inputs[0]) {
            flatten = before
        }
        guard flatten.op == .reshape, let image = editor.graph.valueTypes[flatten.inputs[0]]?.shape, image.rank == 4,
              let flat = editor.graph.valueTypes[flatten.outputs[0]]?.shape, flat.rank == 3, flat[1] == .known(1),
              flat[0] == image[0], let norm = editor.soleConsumer(of: flatten.outputs[0]), norm.op == .instanceNorm,
              norm.inputs.first == flatten.outputs[0], (try? norm.attributeReader.int("axis")).map({ $0 == 1 || $0 == -2 }) == true,
              !editor.isGraphOutput(flatten.outputs[0]), !editor.isGraphOutput(norm.outputs[0]),
              let restore = editor.soleConsumer(of: norm.outputs[0]), restore.op == .reshape, restore.inputs.first == norm.outputs[0],
              editor.graph.valueTypes[restore.outputs[0]]?.shape == image,
              image.dims.dropFirst().allSatisfy({ $0.value != nil }) else { return nil }
        return (flatten, norm, restore)
    }

    /// The shape an NCHW-broadcast constant takes in NHWC, when its data order stays the same:
    /// a scalar, or a vector along the channel axis ([C,1,1], [1,C,1,1]).
    static func nhwcShape(ofNCHWConstant name: String, in graph: Graph) -> [Int]? {
        guard let extents = graph.constants[name]?.type.shape.knownExtents, extents.count <= 4 else { return nil }
        let padded = [Int](repeating: 1, count: 4 - extents.count) + extents
        guard padded.enumerated().allSatisfy({ $0.element == 1 || $0.offset == 1 }) else { return nil }
        return padded.allSatisfy({ $0 == 1 }) ? extents : toNHWC.map { padded[$0] }
    }

    /// A Flatten (axis 1), or a Reshape to [N, C·H·W], of an NCHW value whose only reader is a
    /// dense that owns its kernel; nil when `node` is neither kind of flatten.
    private func flattenExit(_ node: Node, reading value: String, in editor: GraphEditor)
        -> Result<(flatten: String, dense: String, chw: [Int]), Rejection>? {
        guard node.op == .flatten || node.op == .reshape, let output = node.outputs.first,
              let input = editor.graph.valueTypes[value]?.shape, let result = editor.graph.valueTypes[output]?.shape,
              let chw = Shape(Array(input.dims.dropFirst())).knownExtents, chw.count == 3,
              chw[1] * chw[2] > 1 else { return nil }
        let flattensAll = result.rank == 2 && result[0] == input[0] && result[1] == .known(chw.reduce(1, *))
        guard flattensAll, node.op == .reshape || (try? node.attributeReader.int("axis")) == 1 else { return nil }
        guard let dense = editor.soleConsumer(of: output), dense.op == .dense, dense.inputs.first == output else {
            return .failure(Rejection("\(node.op.rawValue) '\(node.name)' of NCHW value '\(value)' does not feed a single dense"))
        }
        if let problem = editor.exclusiveConstantProblem(dense.inputs[1], for: dense.name) {
            return .failure(Rejection("cannot permute the kernel of dense '\(dense.name)' after '\(node.name)': \(problem)"))
        }
        return .success((node.name, dense.name, chw))
    }

    /// Rewrites the region; returns the bytes of weights written.
    private func apply(_ region: Region, in editor: inout GraphEditor) -> Int {
        var bytes = 0
        for name in region.nodes {
            guard var node = editor.node(named: name) else { continue }
            switch node.op {
            case _ where node.attributeReader.schema.attributeSpec("layout") != nil:
                node.attributes["layout"] = .string("nhwc")
            case .batchNorm:
                node.attributes["axis"] = .int(-1)
            case .concat, .split:
                let axis = (try? node.attributeReader.int("axis")) ?? (node.op == .split ? 0 : -1)
                node.attributes["axis"] = .int(Self.nhwcAxis[(axis + 4) % 4])
            case .pad:
                if let pads = try? node.attributeReader.ints("pads"), pads.count == 8 {
                    node.attributes["pads"] = .ints(Self.toNHWC.map { pads[$0] } + Self.toNHWC.map { pads[4 + $0] })
                }
            case .slice:
                let starts = (try? node.attributeReader.ints("starts")) ?? []
                let axes = (try? node.attributeReader.optionalInts("axes")) ?? Array(starts.indices)
                node.attributes["axes"] = .ints(axes.map { Self.nhwcAxis[($0 + 4) % 4] })
            case .gather:
                node.attributes["axis"] = .int(Self.nhwcAxis[(((try? node.attributeReader.int("axis")) ?? 0) + 4) % 4])
            case .reduceSum, .reduceSumSquare, .reduceProd, .reduceMax, .reduceMin:
                node.attributes["axes"] = .ints([1, 2])
            case .squeeze:
                if let axes = try? node.attributeReader.optionalInts("axes") {
                    node.attributes["axes"] = .ints(axes.map { Self.nhwcAxis[($0 + 4) % 4] }.sorted())
                }
            case .reshape:
                // The end of a whole-image normalisation restores the image in NHWC.
                if let sandwich = wholeImageNormalization(around: node, in: editor), sandwich.restore.name == node.name,
                   let image = editor.graph.valueTypes[node.outputs[0]]?.shape.dims.dropFirst().compactMap(\.value), image.count == 3 {
                    node.attributes["shape"] = .ints([0, image[1], image[2], image[0]])
                }
            case .flatten:
                break
            case .reduceMean:
                // Keel's global average pool is the faster kernel for the same mean.
                let keepDims = (try? node.attributeReader.bool("keepdims")) ?? true
                node.op = .globalAvgPool2d
                node.attributes = Attributes(["keepdims": .bool(keepDims)])
            default:
                for (index, input) in node.inputs.enumerated() {
                    guard let constant = editor.graph.constants[input],
                          let shape = Self.nhwcShape(ofNCHWConstant: input, in: editor.graph),
                          shape != constant.type.shape.knownExtents else { continue }
                    var retyped = constant
                    retyped.type = TensorType(constant.type.dtype, Shape(known: shape))
                    retyped.data = constant.data.map { TensorData(dtype: $0.dtype, shape: shape, storage: $0.storage) }
                    if editor.consumers(of: input).count > 1 || editor.isGraphOutput(input) {
                        retyped.name = editor.unusedName("\(input)_nhwc")
                    }
                    editor.graph.constants[retyped.name] = retyped
                    node.inputs[index] = retyped.name
                }
            }
            editor.update(node.droppingDefaultAttributes())
        }
        for (readerName, value) in region.pixelEntries {
            guard var reader = editor.node(named: readerName) else { continue }
            let reshaped = editor.unusedName("\(value)/nhwc")
            editor.insert(Node(name: reshaped, op: .reshape, inputs: [value], outputs: [reshaped],
                               attributes: Attributes(["shape": .ints([0, 1, 1, -1])]), locations: reader.locations),
                          before: readerName)
            reader.inputs = reader.inputs.map { $0 == value ? reshaped : $0 }
            editor.update(reader)
        }
        for exit in region.flattens {
            guard let dense = editor.node(named: exit.dense) else { continue }
            bytes += permuteRows(of: dense, chw: exit.chw, in: &editor)
        }
        // Before the graph outputs are renamed: a boundary transpose then reads the NHWC value.
        for value in Set(region.boundaries.map(\.value)).sorted() {
            let readers = Set(region.boundaries.filter { $0.value == value }.map(\.reader))
            guard let first = editor.graph.nodes.first(where: { readers.contains($0.name) }) else { continue }
            let back = editor.unusedName("\(value)/to_nchw")
            editor.insert(Node(name: back, op: .transpose, inputs: [value], outputs: [back],
                               attributes: Attributes(["perm": .ints(Self.toNCHW)]), locations: first.locations),
                          before: first.name)
            for name in readers {
                guard var reader = editor.node(named: name) else { continue }
                reader.inputs = reader.inputs.map { $0 == value ? back : $0 }
                editor.update(reader)
            }
        }
        for value in region.outputs { transposeBack(output: value, in: &editor) }
        for name in region.entries + region.exits {
            guard let node = editor.node(named: name) else { continue }
            editor.removeNode(named: name)
            editor.forward(node.outputs[0], to: node.inputs[0])
        }
        return bytes
    }

    /// Keeps the graph output `value` NCHW for its users: the region's node now makes it in NHWC
    /// under a new name, which a transpose at the end of the graph turns back into `value`. A
    /// PyTorch backbone exported for its features ends in such an output; kept NCHW whole,
    /// ResNet50's features ran at 0.68× ONNX Runtime's speed and MobileNetV2's at 0.42×, where one
    /// transpose of a 7×7 map costs a few microseconds.
    private func transposeBack(output value: String, in editor: inout GraphEditor) {
        guard let producer = editor.producer(of: value) else { return }
        let inNHWC = editor.unusedName("\(value)/nhwc")
        for node in editor.graph.nodes where node.inputs.contains(value) || node.name == producer.name {
            var renamed = node
            renamed.inputs = node.inputs.map { $0 == value ? inNHWC : $0 }
            renamed.outputs = node.outputs.map { $0 == value ? inNHWC : $0 }
            editor.update(renamed)
        }
        editor.graph.valueTypes[value] = nil
        editor.insert(Node(name: editor.unusedName("\(value)/to_nchw"), op: .transpose, inputs: [inNHWC], outputs: [value],
                           attributes: Attributes(["perm": .ints(Self.toNCHW)]), locations: producer.locations),
                      before: "")
    }

    /// Feature f = c·H·W + h·W + w of the NCHW flatten is feature g = (h·W + w)·C + c in NHWC:
    /// the dense kernel's input row g takes the old row f. Written straight into the new storage,
    /// walking the old kernel in order: a classifier kernel (VGG's is 400 MB) is held twice only.
    private func permuteRows(of dense: Node, chw: [Int], in editor: inout GraphEditor) -> Int {
        guard let data = editor.graph.constants[dense.inputs[1]]?.data, data.shape.count == 2,
              editor.graph.constants[dense.inputs[1]]?.type.shape.knownExtents == data.shape,
              let outFirst = ChannelAffine.kernelOutputAxisIsFirst(dense) else { return 0 }
        let (channels, positions) = (chw[0], chw[1] * chw[2])
        let features = channels * positions
        let outputs = outFirst ? data.shape[0] : data.shape[1]
        guard features == (outFirst ? data.shape[1] : data.shape[0]) else { return 0 }
        let float32 = data.dtype == .float32 ? data : TensorData(floats: data.floats(), shape: data.shape)
        guard let old = float32.floatBuffer, let source = old.baseAddress else { return 0 }
        let permuted = TensorData(float32Shape: data.shape) { new in
            guard let target = new.baseAddress else { return }
            if outFirst {
                // Each output's row of features is a C×(H·W) matrix to transpose.
                for output in 0..<outputs {
                    let from = source + output * features, to = target + output * features
                    for channel in 0..<channels {
                        for position in 0..<positions { to[position * channels + channel] = from[channel * positions + position] }
                    }
                }
            } else {
                // Whole rows of `outputs` values move.
                for channel in 0..<channels {
                    for position in 0..<positions {
                        (target + (position * channels + channel) * outputs)
                            .update(from: source + (channel * positions + position) * outputs, count: outputs)
                    }
                }
            }
        }
        return editor.setConstant(dense.inputs[1], data: permuted)
    }
}
