import KeelIR

/// ONNX Einsum as the IR's own ops: each operand's indices that nothing else needs are summed
/// away (reduce_sum), and each pair of operands is contracted by one batched matmul, its operands
/// transposed to [shared..., free..., contracted] and its result transposed to the output's order.
/// No new kernel is involved, so the products run on the panel GEMM and transposes that cancel
/// are removed by the passes. Free indices other than the last of each operand become
/// broadcast batch axes (a size-1 axis on the other side) rather than being merged, so a
/// symbolic batch needs no reshape; only several contracted indices are merged, by a reshape.
///
/// Supported: explicit (`->`) and implicit output, `...` broadcasting, one or more operands
/// (contracted left to right). Refused with a reason: an index repeated within one operand
/// (a diagonal or trace), an output index no operand has, operands of unknown rank.
func translateEinsum(_ context: NodeContext) throws {
    let equation = try context.string("equation", default: "")
    guard !equation.isEmpty else { throw context.fail("needs an 'equation' attribute") }
    let operandCount = context.node.inputs.count
    guard operandCount >= 1, (0..<operandCount).allSatisfy(context.hasInput) else {
        throw context.fail("needs one or more operands")
    }
    let ranks = try (0..<operandCount).map { index -> Int in
        guard let rank = context.shape(index)?.count else {
            throw context.fail("the rank of operand \(index) is not known at import time")
        }
        return rank
    }
    let parsed = try EinsumEquation(equation, ranks: ranks, fail: context.fail)
    var builder = EinsumBuilder(context: context)
    var value = try context.input(0)
    var indices = parsed.operands[0]
    for next in 1..<max(1, operandCount) {
        let later = parsed.operands[(next + 1)...].reduce(into: Set(parsed.output)) { $0.formUnion($1) }
        (value, indices) = try builder.contract(value, indices, try context.input(next), parsed.operands[next], keeping: later)
    }
    (value, indices) = builder.sum(value, indices, keeping: Set(parsed.output))
    value = builder.transpose(value, from: indices, to: parsed.output)
    builder.finish(value)
}

/// A parsed equation: each operand's indices and the output's, ellipsis axes numbered apart
/// from letters (right-aligned across operands, as NumPy broadcasts them).
struct EinsumEquation: Equatable {
    var operands: [[Int]]
    var output: [Int]

    /// Ellipsis axis `j` of `count` (0 = outermost) is index `ellipsisBase + count - 1 - j`
    /// counted from the right, so operands with fewer ellipsis axes share the innermost ones.
    static let ellipsisBase = 1 << 20

    init(_ equation: String, ranks: [Int], fail: (String) -> Error) throws {
        let text = equation.filter { !$0.isWhitespace }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw fail("equation '\(equation)' has more than one '->'") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == ranks.count else {
            throw fail("equation '\(equation)' names \(terms.count) operand(s) but the node has \(ranks.count)")
        }
        var ellipsisAxes = 0
        var parsedTerms: [[Int]] = []
        for (term, rank) in zip(terms, ranks) {
            let (letters, hasEllipsis) = try Self.letters(of: term, equation: equation, fail: fail)
            let ellipsis = rank - letters.count
            guard hasEllipsis ? ellipsis >= 0 : ellipsis == 0 else {
                throw fail("term '\(term)' of equation '\(equation)' does not fit an operand of rank \(rank)")
            }
            if hasEllipsis { ellipsisAxes = max(ellipsisAxes, ellipsis) }
            parsedTerms.append(Self.indices(of: term, ellipsis: hasEllipsis ? ellipsis : 0))
            guard Set(parsedTerms[parsedTerms.count - 1]).count == rank else {
                throw fail("term '\(term)' of equation '\(equation)' repeats an index (a diagonal), which Keel does not compute")
            }
        }
        operands = parsedTerms
        let everyEllipsisAxis = (0..<ellipsisAxes).map { Self.ellipsisBase + ellipsisAxes - 1 - $0 }
        if sides.count == 2 {
            let (letters, _) = try Self.letters(of: sides[1], equation: equation, fail: fail)
            output = Self.indices(of: sides[1], ellipsis: 0).flatMap { $0 == -1 ? everyEllipsisAxis : [$0] }
            guard Set(letters).count == letters.count else {
                throw fail("the output of equation '\(equation)' repeats an index")
            }
            let known = Set(parsedTerms.joined())
            if let missing = output.first(where: { !known.contains($0) }) {
                throw fail("the output of equation '\(equation)' has index '\(Self.name(missing))', which no operand has")
            }
        } else {
            // Implicit output: the broadcast axes, then the letters used once, in alphabetical order.
            let counts = parsedTerms.joined().reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
            output = everyEllipsisAxis + counts.filter { $0.key < Self.ellipsisBase && $0.value == 1 }.keys.sorted()
        }
    }

    /// The letters of one term and whether it has an ellipsis; throws on anything else.
    private static func letters(of term: String, equation: String, fail: (String) -> Error) throws -> ([Character], Bool) {
        let pieces = term.components(separatedBy: "...")
        guard pieces.count <= 2 else { throw fail("term '\(term)' of equation '\(equation)' has more than one '...'") }
        let letters = Array(pieces.joined())
        if let bad = letters.first(where: { !($0.isASCII && $0.isLetter) }) {
            throw fail("equation '\(equation)' has '\(bad)', which is not a letter, ',', '...' or '->'")
        }
        return (letters, pieces.count == 2)
    }

    /// A term's indices in order; its ellipsis becomes `ellipsis` axes, or -1 when that is 0 (an
    /// output term, expanded by the caller).
    private static func indices(of term: String, ellipsis: Int) -> [Int] {
        let pieces = term.components(separatedBy: "...")
        let letters = { (piece: String) in piece.unicodeScalars.map { Int($0.value) } }
        guard pieces.count == 2 else { return letters(term) }
        let middle = ellipsis > 0 ? (0..<ellipsis).map { ellipsisBase + ellipsis - 1 - $0 } : [-1]
        return letters(pieces[0]) + middle + letters(pieces[1])
    }

    static func name(_ index: Int) -> String {
        index >= ellipsisBase ? "..." : String(UnicodeScalar(UInt8(clamping: index)))
    }
}

/// Emits the IR steps of one Einsum node, tracking which index each axis of a value holds.
private struct EinsumBuilder {
    let context: NodeContext
    private var steps = 0

    init(context: NodeContext) { self.context = context }

    private mutating func step(_ op: OpKind, _ inputs: [String], _ attributes: [String: AttributeValue]) -> String {
        steps += 1
        return context.emitStep("\(op.rawValue)_\(steps)", op, inputs, attributes)
    }

    /// Sums `value` over the indices not in `keeping`.
    mutating func sum(_ value: String, _ indices: [Int], keeping: Set<Int>) -> (String, [Int]) {
        let axes = indices.indices.filter { !keeping.contains(indices[$0]) }
        guard !axes.isEmpty else { return (value, indices) }
        return (step(.reduceSum, [value], ["axes": .ints(axes), "keepdims": .bool(false)]),
                indices.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
    }

    /// `value` with its axes (holding `from`) in the order of `to`, which has the same indices.
    mutating func transpose(_ value: String, from: [Int], to: [Int]) -> String {
        let perm = to.compactMap { from.firstIndex(of: $0) }
        guard perm != Array(from.indices) else { return value }
        return step(.transpose, [value], ["perm": .ints(perm)])
    }

    /// Size-1 axes inserted at `positions` of the result (none: `value` itself).
    mutating func unsqueeze(_ value: String, at positions: [Int]) -> String {
        positions.isEmpty ? value : step(.unsqueeze, [value], ["axes": .ints(positions)])
    }

    /// `value` ([leading..., c₁, c₂...]) with its last `count` axes merged into one, or a size-1
    /// axis appended when `count` is 0: every leading axis copied (0), the last inferred (-1).
    mutating func mergeTrailing(_ value: String, leading: Int, count: Int) -> String {
        count == 1 ? value : step(.reshape, [value], ["shape": .ints(Array(repeating: 0, count: leading) + [-1])])
    }

    /// a ⊗ b over their shared indices: those in `keeping` stay as batch axes, the others are
    /// summed by the product. Returns the result and its indices.
    mutating func contract(_ a: String, _ aIndices: [Int], _ b: String, _ bIndices: [Int],
                           keeping: Set<Int>) throws -> (String, [Int]) {
        let (a, aIndices) = sum(a, aIndices, keeping: keeping.union(bIndices))
        let (b, bIndices) = sum(b, bIndices, keeping: keeping.union(aIndices))
        let inB = Set(bIndices), inA = Set(aIndices)
        let shared = aIndices.filter { inB.contains($0) && keeping.contains($0) }
        let contracted = aIndices.filter { inB.contains($0) && !keeping.contains($0) }
        let aFree = aIndices.filter { !inB.contains($0) }, bFree = bIndices.filter { !inA.contains($0) }
        let aLead = Array(aFree.dropLast()), bLead = Array(bFree.dropLast())
        // Left: [shared, aFree, K] → [shared, aLead, 1 × |bLead|, M, K] (M = 1 when aFree is empty).
        var left = transpose(a, from: aIndices, to: shared + aFree + contracted)
        left = mergeTrailing(left, leading: shared.count + aFree.count, count: contracted.count)
        let ones = (0..<bLead.count).map { shared.count + aLead.count + $0 }
        left = unsqueeze(left, at: aFree.isEmpty ? ones + [shared.count + aLead.count + bLead.count] : ones)
        // Right: [shared, 1 × |aLead|, bLead, K, N] (N = 1 when bFree is empty).
        var right: String
        if contracted.count == 1, let last = bFree.last {
            right = transpose(b, from: bIndices, to: shared + bLead + contracted + [last])
        } else {
            right = transpose(b, from: bIndices, to: shared + bFree + contracted)
            right = mergeTrailing(right, leading: shared.count + bFree.count, count: contracted.count)
            if bFree.isEmpty { right = unsqueeze(right, at: [shared.count]) }
            let rank = shared.count + bLead.count + 2
            right = step(.transpose, [right], ["perm": .ints(Array(0..<(rank - 2)) + [rank - 1, rank - 2])])
        }
        right = unsqueeze(right, at: (0..<aLead.count).map { shared.count + $0 })
        var product = step(.matmul, [left, right], [:])
        // [shared, aLead, bLead, M, N]: drop the M or N axis that stands for no index.
        let rank = shared.count + aLead.count + bLead.count + 2
        let synthetic = (aFree.isEmpty ? [rank - 2] : []) + (bFree.isEmpty ? [rank - 1] : [])
        if !synthetic.isEmpty { product = step(.squeeze, [product], ["axes": .ints(synthetic)]) }
        return (product, shared + aLead + bLead + aFree.suffix(1) + bFree.suffix(1))
    }

    /// Binds the node's output to `value` (an identity when the equation changed nothing).
    func finish(_ value: String) {
        context.emit(.identity, [value], shape: nil)
    }
}
