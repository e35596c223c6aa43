/// Attention read in place from token rows, at every capability set this CPU has (the panel
/// GEMM, and the portable loops where there is none), against a naive double-precision
/// softmax(scale·s_h·q̂·k̂ᵀ)·v per sequence and head (q̂, k̂ the rows over their norms in cosine attention).
import KeelKernels
import XCTest

final class AttentionTests: XCTestCase {
    /// Element (sequence, token, column) of a [sequences, tokens, columns] tensor, or of
    /// [tokens, sequences, columns] when `sequenceFirst`.
    static func index(_ sequence: Int, _ token: Int, _ column: Int, sequences: Int, tokens: Int, columns: Int,
                      sequenceFirst: Bool) -> Int {
        (sequenceFirst ? token * sequences + sequence : sequence * tokens + token) * columns + column
    }

    static func reference(q: [Float], k: [Float], v: [Float], shape: Attention.Shape,
                          bias: (values: [Float], period: Int)? = nil) -> [Float] {
        let width = shape.heads * shape.headSize
        var output = [Float](repeating: 0, count: shape.sequences * shape.queryTokens * width)
        for sequence in 0..<shape.sequences {
            for head in 0..<shape.heads {
                for token in 0..<shape.queryTokens {
                    var scores = [Double](repeating: 0, count: shape.keyTokens)
                    let qIndices = (0..<shape.headSize).map {
                        index(sequence, token, shape.offsets[0] + head * shape.headSize + $0, sequences: shape.sequences,
                              tokens: shape.queryTokens, columns: shape.columns[0], sequenceFirst: shape.sequenceFirst)
                    }
                    for key in 0..<shape.keyTokens {
                        let kIndices = (0..<shape.headSize).map {
                            index(sequence, key, shape.offsets[1] + head * shape.headSize + $0, sequences: shape.sequences,
                                  tokens: shape.keyTokens, columns: shape.columns[1], sequenceFirst: shape.sequenceFirst)
                        }
                        for (qIndex, kIndex) in zip(qIndices, kIndices) { scores[key] += Double(q[qIndex]) * Double(k[kIndex]) }
                        if let epsilon = shape.normalizingEpsilon {
                            let norm = { (values: [Float], indices: [Int]) in
                                Swift.max(indices.map { Double(values[$0]) * Double(values[$0]) }.reduce(0, +).squareRoot(),
                                          Double(epsilon))
                            }
                            scores[key] /= norm(q, qIndices) * norm(k, kIndices)
                        }
                        scores[key] *= Double(shape.scale) * Double(shape.headScales.isEmpty ? 1 : shape.headScales[head])
                        if let bias {
                            let block = ((sequence % bias.period) * shape.heads + head) * shape.queryTokens + token
                            scores[key] += Double(bias.values[block * shape.keyTokens + key])
                        }
                    }
                    let largest = scores.max() ?? 0
                    let exponentials = scores.map { Foundation.exp($0 - largest) }
                    let sum = exponentials.reduce(0, +)
                    for column in 0..<shape.headSize {
                        var value = 0.0
                        for key in 0..<shape.keyTokens {
                            let vIndex = index(sequence, key, shape.offsets[2] + head * shape.headSize + column,
                                               sequences: shape.sequences, tokens: shape.keyTokens,
                                               columns: shape.columns[2], sequenceFirst: shape.sequenceFirst)
                            value += exponentials[key] / sum * Double(v[vIndex])
                        }
                        output[index(sequence, token, head * shape.headSize + column, sequences: shape.sequences,
                                     tokens: shape.queryTokens, columns: width, sequenceFirst: shape.sequenceFirst)] = Float(value)
                    }
                }
            }
        }
        return output
    }

    /// Attention.apply on arrays: the output of `shape`.
    static func attention(q: [Float], k: [Float], v: [Float], bias: (values: [Float], period: Int)? = nil,
                          shape: Attention.Shape, threads: Int) throws -> [Float] {
        try withOutput(shape.sequences * shape.queryTokens * shape.heads * shape.headSize) { output in
            try q.withUnsafeBufferPointer { q in
                try k.withUnsafeBufferPointer { k in
                    try v.withUnsafeBufferPointer { v in
                        try (bias?.values ?? []).withUnsafeBufferPointer { values in
                            try Attention.apply(q: q, k: k, v: v, bias: bias.map { Attention.Bias(values: values, period: $0.period) },
                                                output: output, shape: shape, context: KernelContext(threads: threads))
                        }
                    }
                }
            }
        }
    }

    /// One fused QKV tensor (PyTorch's in_proj, columns q | k | v) and separate q, k, v with
    /// spare columns; head sizes off and on the 32-column panel; more key than query tokens.
    func testAttentionMatchesTheNaiveReference() throws {
        let cases: [(sequences: Int, queryTokens: Int, keyTokens: Int, heads: Int, headSize: Int, fused: Bool)] = [
            (1, 5, 5, 2, 4, true), (3, 7, 7, 3, 33, true), (2, 17, 17, 2, 64, true), (2, 4, 9, 2, 5, false), (1, 1, 3, 1, 1, false),
        ]
        try forEachCapabilitySet(testing: "attention") { capabilities in
            for (number, test) in cases.enumerated() {
                for sequenceFirst in [false, true] {
                    let width = test.heads * test.headSize
                    let columns = test.fused ? [3 * width, 3 * width, 3 * width] : [width + 3, width, width + 1]
                    let offsets = test.fused ? [0, width, 2 * width] : [2, 0, 1]
                    let shape = Attention.Shape(
                        sequences: test.sequences, queryTokens: test.queryTokens, keyTokens: test.keyTokens,
                        heads: test.heads, headSize: test.headSize, scale: 0.3, columns: columns, offsets: offsets,
                        sequenceFirst: sequenceFirst)
                    let seed = UInt64(10 * number)
                    let q = seededValues(test.sequences * test.queryTokens * columns[0], seed: seed)
                    let k = test.fused ? q : seededValues(test.sequences * test.keyTokens * columns[1], seed: seed + 1)
                    let v = test.fused ? q : seededValues(test.sequences * test.keyTokens * columns[2], seed: seed + 2)
                    let expected = Self.reference(q: q, k: k, v: v, shape: shape)
                    for threads in [1, 2] {
                        let actual = try Self.attention(q: q, k: k, v: v, shape: shape, threads: threads)
                        assertClose(actual, expected, "\(test) sequence first \(sequenceFirst) [\(capabilities)] threads \(threads)")
                    }
                }
            }
        }
    }

    func testHeadColumnsBeyondTheRowsAreRefused() {
        let shape = Attention.Shape(sequences: 1, queryTokens: 2, keyTokens: 2, heads: 2, headSize: 4, scale: 1,
                                    columns: [8, 8, 8], offsets: [0, 1, 0], sequenceFirst: false)
        let values = [Float](repeating: 1, count: 16)
        XCTAssertThrowsError(try Self.attention(q: values, k: values, v: values, shape: shape, threads: 1))
    }

    /// A bias on the scores repeating every `period` sequences (Swin's windows: a position table per
    /// head plus a mask per window, −100 where tokens may not meet), ragged 49-token rows included.
    func testBiasRepeatsAlongTheSequences() throws {
        let cases: [(sequences: Int, tokens: Int, heads: Int, headSize: Int, period: Int)] = [
            (4, 5, 2, 4, 2), (6, 49, 3, 32, 3), (3, 7, 1, 17, 1),
        ]
        try forEachCapabilitySet(testing: "attention bias") { capabilities in
            for (number, test) in cases.enumerated() {
                let width = test.heads * test.headSize
                let shape = Attention.Shape(
                    sequences: test.sequences, queryTokens: test.tokens, keyTokens: test.tokens, heads: test.heads,
                    headSize: test.headSize, scale: 0.25, columns: [3 * width, 3 * width, 3 * width],
                    offsets: [0, width, 2 * width], sequenceFirst: false)
                let qkv = seededValues(test.sequences * test.tokens * 3 * width, seed: UInt64(100 + number))
                var bias = seededValues(test.period * shape.biasPerSequence, seed: UInt64(200 + number))
                for index in bias.indices where index % 3 == 0 { bias[index] -= 100 }
                let expected = Self.reference(q: qkv, k: qkv, v: qkv, shape: shape, bias: (bias, test.period))
                for threads in [1, 2] {
                    let actual = try Self.attention(q: qkv, k: qkv, v: qkv, bias: (bias, test.period), shape: shape,
                                                    threads: threads)
                    assertClose(actual, expected, "\(test) [\(capabilities)] threads \(threads)")
                }
            }
        }
    }

    /// Swin V2's cosine attention: q and k rows over their norms, a factor per head, a bias; head
    /// sizes on and off the 16 lanes, a zero row (its norm clamped to ε), fused and separate q, k, v.
    func testCosineAttentionWithHeadScales() throws {
        let cases: [(sequences: Int, tokens: Int, heads: Int, headSize: Int, fused: Bool)] = [
            (4, 8, 3, 32, true), (2, 5, 2, 19, false), (1, 3, 1, 1, true),
        ]
        try forEachCapabilitySet(testing: "cosine attention") { capabilities in
            for (number, test) in cases.enumerated() {
                let width = test.heads * test.headSize
                let columns = test.fused ? [3 * width, 3 * width, 3 * width] : [width + 1, width, width + 2]
                let offsets = test.fused ? [0, width, 2 * width] : [1, 0, 2]
                let shape = Attention.Shape(
                    sequences: test.sequences, queryTokens: test.tokens, keyTokens: test.tokens, heads: test.heads,
                    headSize: test.headSize, scale: 1, columns: columns, offsets: offsets, sequenceFirst: false,
                    headScales: (0..<test.heads).map { 10 + 7 * Float($0) }, normalizingEpsilon: 1e-12)
                var q = seededValues(test.sequences * test.tokens * columns[0], seed: UInt64(300 + number))
                for column in 0..<columns[0] { q[column] = 0 }
                let k = test.fused ? q : seededValues(test.sequences * test.tokens * columns[1], seed: UInt64(400 + number))
                let v = test.fused ? q : seededValues(test.sequences * test.tokens * columns[2], seed: UInt64(500 + number))
                let bias = seededValues(shape.biasPerSequence, seed: UInt64(600 + number))
                let expected = Self.reference(q: q, k: k, v: v, shape: shape, bias: (bias, 1))
                for threads in [1, 2] {
                    let actual = try Self.attention(q: q, k: k, v: v, bias: (bias, 1), shape: shape, threads: threads)
                    assertClose(actual, expected, "\(test) [\(capabilities)] threads \(threads)")
                }
            }
        }
    }

    func testHeadScalesForOtherHeadsAreRefused() {
        let shape = Attention.Shape(sequences: 1, queryTokens: 2, keyTokens: 2, heads: 2, headSize: 2, scale: 1,
                                    columns: [4, 4, 4], offsets: [0, 0, 0], sequenceFirst: false, headScales: [1, 2, 3])
        let values = [Float](repeating: 1, count: 8)
        XCTAssertThrowsError(try Self.attention(q: values, k: values, v: values, shape: shape, threads: 1)) {
            XCTAssertTrue("\($0)".contains("3 head scales for 2 heads"), "\($0)")
        }
    }

    func testBiasThatDoesNotTileTheSequencesIsRefused() {
        let shape = Attention.Shape(sequences: 3, queryTokens: 2, keyTokens: 2, heads: 1, headSize: 2, scale: 1,
                                    columns: [2, 2, 2], offsets: [0, 0, 0], sequenceFirst: false)
        let values = [Float](repeating: 1, count: 12)
        XCTAssertThrowsError(try Self.attention(q: values, k: values, v: values, bias: (values, 2), shape: shape, threads: 1)) {
            XCTAssertTrue("\($0)".contains("does not tile 3 sequences"), "\($0)")
        }
    }
}
