import KeelIR

/// How a reshape factors one axis: the factored shape is the input's with axis `axis` replaced by
/// `factors` (known extents whose product is that axis's), every other extent kept in place.
/// ShuffleNet's channel shuffle and ResNeSt's split attention both reshape [N,C,H,W] to
/// [N,g,C/g,H,W] this way; the passes that undo those 5-D detours start from it.
struct AxisFactoring: Equatable {
    var axis: Int
    var factors: [Int]

    /// Nil when `factored` is anything but `input` with one axis factored.
    init?(from input: [Dim], to factored: [Dim]) {
        let extra = factored.count - input.count
        guard extra >= 1, let axis = input.indices.first(where: { input[$0] != factored[$0] }),
              Array(input[..<axis]) == Array(factored[..<axis]),
              Array(input[(axis + 1)...]) == Array(factored[(axis + extra + 1)...]) else { return nil }
        let factors = (axis...(axis + extra)).compactMap { factored[$0].value }
        guard factors.count == extra + 1, let extent = input[axis].value, factors.reduce(1, *) == extent else { return nil }
        self.axis = axis
        self.factors = factors
    }

    /// The factoring `reshape` applies to its input, when it is one.
    init?(of reshape: Node, in graph: Graph) {
        guard reshape.op == .reshape, let input = graph.valueTypes[reshape.inputs[0]]?.shape.dims,
              let output = graph.valueTypes[reshape.outputs[0]]?.shape.dims else { return nil }
        self.init(from: input, to: output)
    }
}
