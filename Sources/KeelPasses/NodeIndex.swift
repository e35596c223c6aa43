import KeelIR

/// Where each node of a graph is, which node makes each value and which nodes read it, by name:
/// `GraphEditor` brings it up to date as it edits nodes instead of rebuilding it after each edit.
struct NodeIndex {
    /// Each node's position in the graph's node list (the first, should two share a name).
    private(set) var byName: [String: Int]
    /// The node making each value (the first, should two make it).
    private(set) var producers: [String: String]
    /// The nodes reading each value, each once, in no particular order.
    private(set) var readers: [String: [String]]
    /// Every node has a name of its own and every value one producer. Only then can an edit be
    /// followed here: with a duplicate, which one the index names depends on the node order.
    /// An edit that breaks it leaves the index to be rebuilt.
    private(set) var isSimple = true

    init(_ nodes: [Node]) {
        // Sized up front and without a Set per node: built by every pass, on graphs of 100,000 nodes.
        let count = nodes.count
        byName = [String: Int](minimumCapacity: count)
        producers = [String: String](minimumCapacity: count)
        readers = [String: [String]](minimumCapacity: count)
        for (position, node) in nodes.enumerated() {
            if byName[node.name] == nil { byName[node.name] = position } else { isSimple = false }
            add(node)
        }
    }

    /// The node at `position` is gone: later nodes move up one.
    mutating func remove(_ node: Node, at position: Int) {
        byName[node.name] = nil
        byName = byName.mapValues { $0 > position ? $0 - 1 : $0 }
        drop(node)
    }

    /// The node keeps its name and place but reads or makes other values.
    mutating func replace(_ old: Node, with new: Node) {
        drop(old)
        add(new)
    }

    /// Every mention of value `old`, read or made, now names `new`.
    mutating func rename(_ old: String, to new: String) {
        if let moving = readers.removeValue(forKey: old) {
            var target = readers[new] ?? []
            for reader in moving where !target.contains(reader) { target.append(reader) }
            readers[new] = target
        }
        if let producer = producers.removeValue(forKey: old) {
            if producers[new] != nil { isSimple = false }
            producers[new] = producer
        }
    }

    /// Whether both index the same graph (readers compared as sets).
    func matches(_ other: NodeIndex) -> Bool {
        byName == other.byName && producers == other.producers && isSimple == other.isSimple
            && readers.mapValues { Set($0) } == other.readers.mapValues { Set($0) }
    }

    private mutating func add(_ node: Node) {
        for output in node.outputs {
            if producers[output] == nil { producers[output] = node.name } else { isSimple = false }
        }
        for (slot, input) in node.inputs.enumerated() where !node.inputs[..<slot].contains(input) {
            readers[input, default: []].append(node.name)
        }
    }

    private mutating func drop(_ node: Node) {
        for output in node.outputs where producers[output] == node.name { producers[output] = nil }
        for (slot, input) in node.inputs.enumerated() where !node.inputs[..<slot].contains(input) {
            readers[input]?.removeAll { $0 == node.name }
            if readers[input]?.isEmpty == true { readers[input] = nil }
        }
    }
}
