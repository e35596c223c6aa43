import KeelIR

/// Concatenations that live inside a later concatenation's buffer, so that each one copies only
/// the inputs no earlier one has put there.
///
/// DenseNet grows its feature map by concatenation: Keras concatenates the previous
/// concatenation with the new channels, PyTorch concatenates the whole list of earlier features
/// at every layer. Either way each concatenation is a slice of the block's last one, so the block
/// shares that buffer and each layer copies only its new channels: linear copying instead of
/// quadratic, and the earlier features die once copied.
///
/// A hosted concatenation X sits inside host Y either as one of Y's inputs (Keras) or because
/// X's inputs open Y's input list (PyTorch). Its slice is strided (rows of extent × inner at the
/// host's row stride) unless everything before the axis has extent 1, so X qualifies only when
/// every reader takes a row stride: its host at X's own position, and batch_norm over the same
/// axis. Every member's slice holds the root's final values, so a copy never overwrites what an
/// earlier member placed with anything else.
struct ConcatPlacement {
    /// Rows of a slice of a wider buffer: `count` rows of `length` elements, `stride` apart.
    struct Rows: Equatable {
        var count: Int
        var length: Int
        var stride: Int
        /// Elements from the first to one past the last.
        var span: Int { count == 0 ? 0 : (count - 1) * stride + length }
    }

    /// A value kept inside the root's buffer.
    struct Region: Equatable {
        var root: String
        /// Elements from the root's first element.
        var offset: Int
        var rows: Rows
    }

    /// What one concatenation of a shared buffer copies.
    struct Write: Equatable {
        /// Indices of the inputs it copies; the others are in place already.
        var copied: [Int]
        /// Extent of the root's concatenation axis: the output's row, in axis positions.
        var rootAxisExtent: Int
    }

    /// Hosted values (concatenation outputs) by name.
    private(set) var regions: [String: Region] = [:]
    /// Writes of the concatenations of shared buffers (members and roots), by node index.
    private(set) var writes: [Int: Write] = [:]

    /// A concatenation with every extent known.
    private struct Candidate {
        var index: Int
        var output: String
        var inputs: [String]
        var axis: Int
        var starts: [Int]
        var extent: Int
        var outer: Int
        var inner: Int

        func fits(_ other: Candidate) -> Bool { axis == other.axis && outer == other.outer && inner == other.inner }
    }

    /// `isActivation` says whether a value is an fp32 intermediate the plan places (not a
    /// constant, not bf16); `pinned` values (graph outputs) keep buffers of their own.
    /// `writesPixelRows` says whether a node can write its one output as rows of a wider buffer
    /// (a convolution's output pixels, a channels-last concatenation's row apart): such an input
    /// whose every reader is a concatenation of the same buffer is written in place by its
    /// producer, and no concatenation copies it (Inception's and SqueezeNet's branches).
    init(graph: Graph, shapes: [String: [Int]], pinned: Set<String>, isActivation: (String) -> Bool,
         writesPixelRows: (Int) -> Bool = { _ in false }) {
        var candidates: [Int: Candidate] = [:]
        var byFirstInput: [String: [Int]] = [:]
        var readers: [String: [(node: Int, position: Int)]] = [:]
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for (position, input) in node.inputs.enumerated() where !input.isEmpty {
                readers[input, default: []].append((index, position))
            }
            for output in node.outputs { producers[output] = index }
            guard node.op == .concat, node.outputs.count == 1, let shape = shapes[node.outputs[0]],
                  !node.inputs.isEmpty, !node.inputs.contains(where: \.isEmpty),
                  ([node.outputs[0]] + node.inputs).allSatisfy(isActivation),
                  let attribute = try? AttributeReader(node: node).int("axis"),
                  let axis = Shape(known: shape).normalizedAxis(attribute) else { continue }
            let extents = node.inputs.map { shapes[$0]?[axis] ?? -1 }
            guard extents.allSatisfy({ $0 >= 0 }), extents.reduce(0, +) == shape[axis] else { continue }
            candidates[index] = Candidate(
                index: index, output: node.outputs[0], inputs: node.inputs, axis: axis,
                starts: extents.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1) }, extent: shape[axis],
                outer: shape[..<axis].reduce(1, *), inner: shape[(axis + 1)...].reduce(1, *))
            byFirstInput[node.inputs[0], default: []].append(index)
        }

        /// Where `member` sits in a later concatenation (axis position), if its readers allow it.
        func host(of member: Candidate) -> (host: Int, start: Int)? {
            guard !pinned.contains(member.output) else { return nil }
            // Hosts read the member, or open with the same first input.
            let nearby = (readers[member.output] ?? []).map(\.node) + (byFirstInput[member.inputs[0]] ?? [])
            var found: (host: Int, start: Int)?
            for index in Set(nearby).sorted() where index > member.index {
                guard let other = candidates[index], other.fits(member) else { continue }
                let positions = other.inputs.indices.filter { other.inputs[$0] == member.output }
                if positions.count == 1 {
                    found = (index, other.starts[positions[0]])
                } else if positions.isEmpty, other.inputs.starts(with: member.inputs) {
                    found = (index, 0)
                }
                if found != nil { break }
            }
            guard let found else { return nil }
            let allowed = (readers[member.output] ?? []).allSatisfy { reader in
                if reader.node == found.host { return true }
                let node = graph.nodes[reader.node]
                guard node.op == .batchNorm, reader.position == 0, let shape = shapes[member.output],
                      let attribute = try? AttributeReader(node: node).int("axis") else { return false }
                return Shape(known: shape).normalizedAxis(attribute) == member.axis
            }
            return allowed ? found : nil
        }

        // Hosts come later, so walking backwards resolves each host's own root first.
        var placement: [Int: (root: Int, start: Int)] = [:]
        for index in candidates.keys.sorted(by: >) {
            guard let member = candidates[index], let (hostIndex, start) = host(of: member) else { continue }
            let hostPlacement = placement[hostIndex] ?? (hostIndex, 0)
            placement[index] = (hostPlacement.root, hostPlacement.start + start)
        }
        /// The root and axis position where concatenation `index` puts its input `position`.
        func destination(_ index: Int, _ position: Int) -> (root: Int, at: Int)? {
            guard let member = candidates[index] else { return nil }
            let (root, start) = placement[index] ?? (index, 0)
            return (root, start + member.starts[position])
        }
        // Inputs whose producer writes them in place: every reader a concatenation that puts them
        // at the same position of the same channels-last buffer.
        var writtenInPlace: [String: (root: Int, at: Int, extent: Int)] = [:]
        for index in candidates.keys.sorted() {
            guard let member = candidates[index], member.inner == 1 else { continue }
            for (position, input) in member.inputs.enumerated() where writtenInPlace[input] == nil {
                guard !pinned.contains(input), let producer = producers[input], graph.nodes[producer].outputs.count == 1,
                      writesPixelRows(producer), let target = destination(index, position) else { continue }
                let sameSlot = (readers[input] ?? []).allSatisfy { reader in
                    guard let other = candidates[reader.node], other.inputs.filter({ $0 == input }).count == 1,
                          let slot = destination(reader.node, reader.position) else { return false }
                    return slot == target
                }
                if sameSlot {
                    writtenInPlace[input] = (target.root, target.at, member.starts[position + 1] - member.starts[position])
                }
            }
        }
        let roots = Set(placement.values.map(\.root)).union(writtenInPlace.values.map(\.root))
        for (value, place) in writtenInPlace {
            guard let root = candidates[place.root] else { continue }
            regions[value] = Region(root: root.output, offset: place.at,
                                    rows: Rows(count: root.outer, length: place.extent, stride: root.extent))
        }

        // Which value each axis position of each root already holds, in the plan's order.
        var placed: [Int: [Int: String]] = [:]
        for index in candidates.keys.sorted() {
            guard let member = candidates[index], placement[index] != nil || roots.contains(index) else { continue }
            let (rootIndex, start) = placement[index] ?? (index, 0)
            guard let root = candidates[rootIndex] else { continue }
            let rowStride = root.extent * member.inner
            if rootIndex != index {
                regions[member.output] = Region(
                    root: root.output, offset: start * member.inner,
                    rows: Rows(count: member.outer, length: member.extent * member.inner, stride: rowStride))
            }
            var copied: [Int] = []
            for (position, input) in member.inputs.enumerated() {
                let at = start + member.starts[position]
                let inPlace = placed[rootIndex]?[at] == input
                    || (regions[input].map { $0.root == root.output && $0.offset == at * member.inner } ?? false)
                if !inPlace {
                    copied.append(position)
                    placed[rootIndex, default: [:]][at] = input
                }
            }
            writes[index] = Write(copied: copied, rootAxisExtent: root.extent)
        }
    }

    /// Whether node `index` reads input `position` at all (an input already in place is not read).
    func reads(node index: Int, position: Int) -> Bool {
        writes[index].map { $0.copied.contains(position) } ?? true
    }
}
