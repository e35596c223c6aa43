import KeelIR
import KeelPasses
import XCTest

/// PyTorch's MultiheadAttention as the legacy exporter writes it (a fused QKV projection over
/// [tokens, sequences, features] split into heads by reshapes, transposes and gathers; q and kᵀ
/// each scaled), here with 5 tokens, 2 heads of 4 features.
final class AttentionRecognitionTests: XCTestCase {
    private static func legacyAttention() -> String {
        """
        graph g
        input %x: f32[N,5,8]
        const @qkv/kernel: f32[8,24] kernel
        const @out/kernel: f32[8,8] kernel
        const @q_scale: f32[] literal = 0.5
        const @k_scale: f32[] literal = 0.25
        const @i0: i64[] literal = 0
        const @i1: i64[] literal = 1
        const @i2: i64[] literal = 2
        %seq = transpose(%x) {perm=[1,0,2]} : f32[5,N,8]
        %qkv = dense(%seq, @qkv/kernel) : f32[5,N,24]
        %split = reshape(%qkv) {shape=[5,0,3,8]} : f32[5,N,3,8]
        %lift = unsqueeze(%split) {axes=[0]} : f32[1,5,N,3,8]
        %moved = transpose(%lift) {perm=[3,1,2,0,4]} : f32[3,5,N,1,8]
        %parts = squeeze(%moved) {axes=[3]} : f32[3,5,N,8]
        %q = gather(%parts, @i0) {axis=0} : f32[5,N,8]
        %k = gather(%parts, @i1) {axis=0} : f32[5,N,8]
        %v = gather(%parts, @i2) {axis=0} : f32[5,N,8]
        %q_heads = reshape(%q) {shape=[5,-1,4]} : f32[5,2·N,4]
        %k_heads = reshape(%k) {shape=[5,-1,4]} : f32[5,2·N,4]
        %v_heads = reshape(%v) {shape=[5,-1,4]} : f32[5,2·N,4]
        %q_first = transpose(%q_heads) {perm=[1,0,2]} : f32[2·N,5,4]
        %k_first = transpose(%k_heads) {perm=[1,0,2]} : f32[2·N,5,4]
        %v_first = transpose(%v_heads) {perm=[1,0,2]} : f32[2·N,5,4]
        %q4 = reshape(%q_first) {shape=[-1,2,5,4]} : f32[N,2,5,4]
        %k4 = reshape(%k_first) {shape=[-1,2,5,4]} : f32[N,2,5,4]
        %v4 = reshape(%v_first) {shape=[-1,2,5,4]} : f32[N,2,5,4]
        %k_t = transpose(%k4) {perm=[0,1,3,2]} : f32[N,2,4,5]
        %q_scaled = mul(%q4, @q_scale) : f32[N,2,5,4]
        %k_scaled = mul(%k_t, @k_scale) : f32[N,2,4,5]
        %scores = matmul(%q_scaled, %k_scaled) : f32[N,2,5,5]  # g.keel:3:1
        %probabilities = softmax(%scores) {axis=-1} : f32[N,2,5,5]  # g.keel:4:1
        %context = matmul(%probabilities, %v4) : f32[N,2,5,4]  # g.keel:5:1
        %tokens = transpose(%context) {perm=[2,0,1,3]} : f32[5,N,2,4]
        %rows = reshape(%tokens) {shape=[-1,8]} : f32[5·N,8]
        %out = dense(%rows, @out/kernel) : f32[5·N,8]
        output y = %out
        """
    }

    /// The head-split views, gathers and scales vanish: one attention node reads the QKV rows
    /// (sequence first, heads at columns 0, 8 and 16, scale 0.5·0.25) and the reshape to rows
    /// reads its output.
    func testGoldenLegacyPyTorchAttentionBecomesOneNode() throws {
        try assertRewrite(AttentionRecognition(), Self.legacyAttention(), """
            graph g
            input %x: f32[N,5,8]
            const @qkv/kernel: f32[8,24] kernel
            const @out/kernel: f32[8,8] kernel
            %seq = transpose(%x) {perm=[1,0,2]} : f32[5,N,8]
            %qkv = dense(%seq, @qkv/kernel) : f32[5,N,24]
            %context/attention = attention(%qkv, %qkv, %qkv) {head_size=4, heads=2, offsets=[0,8,16], scale=0.125, sequence_first=true} : f32[5,N,8]  # g.keel:3:1, g.keel:4:1, g.keel:5:1
            %rows = reshape(%context/attention) {shape=[-1,8]} : f32[5·N,8]
            %out = dense(%rows, @out/kernel) : f32[5·N,8]
            output y = %out

            """)
    }

    func testRecognisedAttentionComputesTheSameAtSeveralBatchSizes() throws {
        let graph = bindTestWeights(try parseIR(Self.legacyAttention()))
        let result = try optimized(graph, [AttentionRecognition()])
        XCTAssertEqual(result.log, ["attention-recognition: 1 attention blocks recognised, 22 nodes removed, 0 weight bytes changed"])
        for batch in [1, 3] { try assertEquivalent(graph, result.graph, batch: batch) }
    }

    /// Batch-first rows (separate q, k and v projections over [sequences, tokens, features], as
    /// a model written with batch_first=True exports), whose output stays [sequences, heads,
    /// tokens, size] after the product: only the transpose back to rows reads it in order.
    func testBatchFirstSeparateProjections() throws {
        var builder = KerasGraphBuilder(name: "g", shape: ["N", 6, 8], layout: nil)
        for name in ["q", "k", "v"] {
            builder.layer(name, .dense, parameters: [(.kernel, [8, 8])], inputs: ["input"])
            builder.layer("\(name)_heads", .reshape, ["shape": .ints([0, 6, 2, 4])])
            builder.layer("\(name)_first", .transpose, ["perm": .ints(name == "k" ? [0, 2, 3, 1] : [0, 2, 1, 3])])
        }
        builder.layer("scores", .matmul, inputs: ["q_first", "k_first"])
        builder.layer("probabilities", .softmax, ["axis": .int(3)])
        builder.layer("context", .matmul, inputs: ["probabilities", "v_first"])
        builder.layer("tokens", .transpose, ["perm": .ints([0, 2, 1, 3])])
        builder.layer("rows", .reshape, ["shape": .ints([0, 6, 8])])
        builder.output("y")
        let graph = try prepared(builder)
        let result = try optimized(graph, [AttentionRecognition()])
        let attention = try XCTUnwrap(result.graph.nodes.first { $0.op == .attention })
        XCTAssertEqual(attention.inputs, ["q", "k", "v"])
        XCTAssertEqual(attention.attributes["sequence_first"], nil, "batch first is the default")
        XCTAssertEqual(result.graph.count(.transpose), 0)
        try assertEquivalent(graph, result.graph, batch: 3)
    }

    /// A scaled value is not a `scale` (it would scale the output, not the scores): kept, said why.
    func testScaledValuesAreKept() throws {
        let text = Self.legacyAttention().replacingOccurrences(of: "%context = matmul(%probabilities, %v4)",
                                                               with: "%v_scaled = mul(%v4, @q_scale) : f32[N,2,5,4]\n%context = matmul(%probabilities, %v_scaled)")
        let graph = bindTestWeights(try parseIR(text))
        let result = try optimized(graph, [AttentionRecognition()])
        XCTAssertEqual(result.graph.count(.attention), 0)
        XCTAssertEqual(result.explanations, ["attention-recognition: kept 'probabilities': the values are scaled"])
    }

    /// Swin's window attention: 2 windows per image of 3 tokens, 2 heads of 4 features. The scores
    /// add a relative-position table [heads, tokens, tokens], then, through a reshape to [images,
    /// windows, heads, tokens, tokens] and back, a mask per window: both fold into one bias of
    /// [windows, heads, tokens, tokens] that sequence s reads at s mod 2.
    private static func windowAttention(windows w: Int = 2, heads h: Int = 2, mask: String = "@mask") -> String {
        let (f, q) = (4 * h, 12 * h)
        return """
        graph g
        input %x: f32[N,\(w),3,\(f)]
        const @qkv/kernel: f32[\(f),\(q)] kernel
        const @out/kernel: f32[\(f),\(f)] kernel
        const @scale: f32[] literal = 0.5
        const @table: f32[\(h),3,3] bias
        const @mask: f32[1,\(w),1,3,3] literal
        const @i0: i64[] literal = 0
        const @i1: i64[] literal = 1
        const @i2: i64[] literal = 2
        %windows = reshape(%x) {shape=[-1,3,\(f)]} : f32[\(w)·N,3,\(f)]
        %qkv = dense(%windows, @qkv/kernel) : f32[\(w)·N,3,\(q)]
        %split = reshape(%qkv) {shape=[0,3,3,\(h),4]} : f32[\(w)·N,3,3,\(h),4]
        %parts = transpose(%split) {perm=[2,0,3,1,4]} : f32[3,\(w)·N,\(h),3,4]
        %q = gather(%parts, @i0) {axis=0} : f32[\(w)·N,\(h),3,4]
        %k = gather(%parts, @i1) {axis=0} : f32[\(w)·N,\(h),3,4]
        %v = gather(%parts, @i2) {axis=0} : f32[\(w)·N,\(h),3,4]
        %q_scaled = mul(%q, @scale) : f32[\(w)·N,\(h),3,4]
        %k_t = transpose(%k) {perm=[0,1,3,2]} : f32[\(w)·N,\(h),4,3]
        %scores = matmul(%q_scaled, %k_t) : f32[\(w)·N,\(h),3,3]
        %positioned = add(%scores, @table) : f32[\(w)·N,\(h),3,3]
        %per_image = reshape(%positioned) {shape=[-1,\(w),\(h),3,3]} : f32[N,\(w),\(h),3,3]
        %masked = add(%per_image, \(mask)) : f32[N,\(w),\(h),3,3]
        %flat = reshape(%masked) {shape=[-1,\(h),3,3]} : f32[\(w)·N,\(h),3,3]
        %probabilities = softmax(%flat) {axis=-1} : f32[\(w)·N,\(h),3,3]
        %context = matmul(%probabilities, %v) : f32[\(w)·N,\(h),3,4]
        %tokens = transpose(%context) {perm=[0,2,1,3]} : f32[\(w)·N,3,\(h),4]
        %rows = reshape(%tokens) {shape=[0,3,\(f)]} : f32[\(w)·N,3,\(f)]
        %out = dense(%rows, @out/kernel) : f32[\(w)·N,3,\(f)]
        output y = %out
        """
    }

    func testWindowAttentionFoldsItsPositionTableAndMasksIntoOneBias() throws {
        let graph = bindTestWeights(try parseIR(Self.windowAttention()))
        let result = try optimized(graph, [AttentionRecognition()])
        let attention = try XCTUnwrap(result.graph.nodes.first { $0.op == .attention })
        XCTAssertEqual(attention.inputs.prefix(3), ["qkv", "qkv", "qkv"])
        let bias = try XCTUnwrap(result.graph.constants[try XCTUnwrap(attention.inputs.dropFirst(3).first)])
        XCTAssertEqual(bias.type.shape.knownExtents, [2, 2, 3, 3])
        XCTAssertTrue(bias.trainable, "the position table is a trainable parameter")
        // Window w, head h: table[h] + mask[w], as the adds computed it.
        let table = try XCTUnwrap(graph.constants["table"]?.data?.floats())
        let mask = try XCTUnwrap(graph.constants["mask"]?.data?.floats())
        var expected: [Float] = []
        for window in 0..<2 {
            for head in 0..<2 {
                for element in 0..<9 { expected.append(table[head * 9 + element] + mask[window * 9 + element]) }
            }
        }
        XCTAssertEqual(bias.data?.floats(), expected)
        XCTAssertEqual(result.graph.count(.softmax) + result.graph.count(.add) + result.graph.count(.matmul), 0)
        for batch in [1, 3] { try assertEquivalent(graph, result.graph, batch: batch) }
    }

    /// 18 windows and 18 heads would fold 324 blocks from 36: over `maximumGrowth`, kept, said why.
    func testABiasFarLargerThanItsConstantsIsKept() throws {
        let graph = bindTestWeights(try parseIR(Self.windowAttention(windows: 18, heads: 18)))
        let result = try optimized(graph, [AttentionRecognition()])
        XCTAssertEqual(result.graph.count(.attention), 0)
        XCTAssertEqual(result.explanations, ["attention-recognition: kept 'probabilities': one bias would hold 2916 values, "
                                             + "more than 8× the 324 of the constants it sums or 4194304"])
    }

    /// Swin V2's cosine attention, 2 windows of 3 tokens, 2 heads of 4 features: q and k each over
    /// its row norm (F.normalize), the scores times a learnt factor per head, then the position table.
    private static func cosineAttention(normalizedKeys: Bool = true, scaleAfterTable: Bool = false) -> String {
        let kernelTail = normalizedKeys ? "%k_unit" : "%k"
        let logits = scaleAfterTable
            ? "%positioned_first = add(%scores, @table) : f32[2·N,2,3,3]\n%positioned = mul(%positioned_first, @logit_scale) : f32[2·N,2,3,3]"
            : "%logits = mul(%scores, @logit_scale) : f32[2·N,2,3,3]\n%positioned = add(%logits, @table) : f32[2·N,2,3,3]"
        return """
        graph g
        input %x: f32[N,2,3,8]
        const @qkv/kernel: f32[8,24] kernel
        const @out/kernel: f32[8,8] kernel
        const @logit_scale: f32[2,1,1] literal = [10, 30]
        const @table: f32[2,3,3] bias
        const @i0: i64[] literal = 0
        const @i1: i64[] literal = 1
        const @i2: i64[] literal = 2
        %windows = reshape(%x) {shape=[-1,3,8]} : f32[2·N,3,8]
        %qkv = dense(%windows, @qkv/kernel) : f32[2·N,3,24]
        %split = reshape(%qkv) {shape=[0,3,3,2,4]} : f32[2·N,3,3,2,4]
        %parts = transpose(%split) {perm=[2,0,3,1,4]} : f32[3,2·N,2,3,4]
        %q = gather(%parts, @i0) {axis=0} : f32[2·N,2,3,4]
        %k = gather(%parts, @i1) {axis=0} : f32[2·N,2,3,4]
        %v = gather(%parts, @i2) {axis=0} : f32[2·N,2,3,4]
        %q_squares = reduce_sum_square(%q) {axes=[-1], keepdims=true} : f32[2·N,2,3,1]
        %q_norm = sqrt(%q_squares) : f32[2·N,2,3,1]
        %q_clipped = clip(%q_norm) {min=1e-12} : f32[2·N,2,3,1]
        %q_unit = div(%q, %q_clipped) : f32[2·N,2,3,4]
        %k_squares = reduce_sum_square(%k) {axes=[-1], keepdims=true} : f32[2·N,2,3,1]
        %k_norm = sqrt(%k_squares) : f32[2·N,2,3,1]
        %k_clipped = clip(%k_norm) {min=1e-12} : f32[2·N,2,3,1]
        %k_unit = div(%k, %k_clipped) : f32[2·N,2,3,4]
        %k_t = transpose(\(kernelTail)) {perm=[0,1,3,2]} : f32[2·N,2,4,3]
        %scores = matmul(%q_unit, %k_t) : f32[2·N,2,3,3]
        \(logits)
        %probabilities = softmax(%positioned) {axis=-1} : f32[2·N,2,3,3]
        %context = matmul(%probabilities, %v) : f32[2·N,2,3,4]
        %tokens = transpose(%context) {perm=[0,2,1,3]} : f32[2·N,3,2,4]
        %rows = reshape(%tokens) {shape=[0,3,8]} : f32[2·N,3,8]
        %out = dense(%rows, @out/kernel) : f32[2·N,3,8]
        output y = %out
        """
    }

    /// The normalisations, the per-head factor and the table fold into one node: `normalize` with
    /// F.normalize's ε, `head_scales` 10 and 30, the table as its bias; the same outputs at 1 and 3 images.
    func testCosineAttentionBecomesOneNode() throws {
        let graph = bindTestWeights(try parseIR(Self.cosineAttention()))
        let result = try optimized(graph, [AttentionRecognition(), DeadCodeElimination()])
        let attention = try XCTUnwrap(result.graph.nodes.first { $0.op == .attention })
        XCTAssertEqual(attention.inputs.prefix(3), ["qkv", "qkv", "qkv"])
        XCTAssertEqual(attention.attributes.bool("normalize"), true)
        XCTAssertEqual(try attention.attributeReader.float("epsilon"), 1e-12)
        XCTAssertEqual(attention.attributes.floats("head_scales"), [10, 30])
        XCTAssertEqual(attention.attributes.float("scale") ?? 1, 1)
        for op in [OpKind.div, .reduceSumSquare, .sqrt, .clip, .mul, .softmax, .matmul] {
            XCTAssertEqual(result.graph.count(op), 0, "\(op) left")
        }
        for batch in [1, 3] { try assertEquivalent(graph, result.graph, batch: batch) }
    }

    /// Only q normalised, or the factor applied after the table (it would scale the table too): kept, said why.
    func testCosineAttentionThatDoesNotFitIsKept() throws {
        for (text, reason) in [(Self.cosineAttention(normalizedKeys: false), "q and k are not normalised alike"),
                               (Self.cosineAttention(scaleAfterTable: true),
                                "the scores are multiplied by 'logit_scale' after a bias is added")] {
            let graph = bindTestWeights(try parseIR(text))
            let result = try optimized(graph, [AttentionRecognition()])
            XCTAssertEqual(result.graph.count(.attention), 0)
            XCTAssertEqual(result.explanations, ["attention-recognition: kept 'probabilities': \(reason)"])
        }
    }

    /// MaxViT's attention: q, k and v sliced from one projection of [images, 2 windows, 3 tokens,
    /// 24], split into 2 heads of 4 as [images, windows, heads, tokens, 4] (rank 5), k scaled, a
    /// position table [heads, 3, 3] added. One node reads the projection as [2·images, 3, 24].
    func testRankFiveOperandsSlicedFromOneProjection() throws {
        let text = """
        graph g
        input %x: f32[N,2,3,8]
        const @qkv/kernel: f32[8,24] kernel
        const @scale: f32[] literal = 0.5
        const @table: f32[2,3,3] bias
        %qkv = dense(%x, @qkv/kernel) : f32[N,2,3,24]
        %q_columns = slice(%qkv) {axes=[-1], ends=[8], starts=[0]} : f32[N,2,3,8]
        %k_columns = slice(%qkv) {axes=[-1], ends=[16], starts=[8]} : f32[N,2,3,8]
        %v_columns = slice(%qkv) {axes=[3], ends=[2147483647], starts=[-8]} : f32[N,2,3,8]
        %q_split = reshape(%q_columns) {shape=[0,2,3,2,4]} : f32[N,2,3,2,4]
        %k_split = reshape(%k_columns) {shape=[0,2,3,2,4]} : f32[N,2,3,2,4]
        %v_split = reshape(%v_columns) {shape=[0,2,3,2,4]} : f32[N,2,3,2,4]
        %q = transpose(%q_split) {perm=[0,1,3,2,4]} : f32[N,2,2,3,4]
        %k = transpose(%k_split) {perm=[0,1,3,2,4]} : f32[N,2,2,3,4]
        %v = transpose(%v_split) {perm=[0,1,3,2,4]} : f32[N,2,2,3,4]
        %k_scaled = mul(%k, @scale) : f32[N,2,2,3,4]
        %k_t = transpose(%k_scaled) {perm=[0,1,2,4,3]} : f32[N,2,2,4,3]
        %scores = matmul(%q, %k_t) : f32[N,2,2,3,3]
        %positioned = add(%scores, @table) : f32[N,2,2,3,3]
        %probabilities = softmax(%positioned) {axis=-1} : f32[N,2,2,3,3]
        %context = matmul(%probabilities, %v) : f32[N,2,2,3,4]
        %tokens = transpose(%context) {perm=[0,1,3,2,4]} : f32[N,2,3,2,4]
        %rows = reshape(%tokens) {shape=[0,2,3,8]} : f32[N,2,3,8]
        output y = %rows
        """
        let graph = bindTestWeights(try parseIR(text))
        let result = try optimized(graph, [AttentionRecognition(), DeadCodeElimination()])
        let attention = try XCTUnwrap(result.graph.nodes.first { $0.op == .attention })
        XCTAssertEqual(attention.attributes.ints("offsets"), [0, 8, 16])
        XCTAssertEqual(attention.attributes.float("scale"), 0.5)
        let rows = try XCTUnwrap(result.graph.nodes.first { $0.outputs == [attention.inputs[0]] })
        XCTAssertEqual(rows.op, .reshape)
        XCTAssertEqual(Set(attention.inputs.prefix(3)), [rows.outputs[0]])
        XCTAssertEqual(result.graph.count(.slice) + result.graph.count(.matmul) + result.graph.count(.softmax), 0)
        for batch in [1, 3] { try assertEquivalent(graph, result.graph, batch: batch) }
    }

    /// timm's attention (ViT, DeiT, CAFormer): qkv reshaped to [N, 5, 3, 2 heads, 4] and moved to
    /// [3, N, 2, 5, 4], then unbound along the leading axis (a split into three and squeezes);
    /// q and kᵀ each scaled as F.scaled_dot_product_attention exports. One node reads the projection.
    func testOperandsUnboundBySplitFromOneProjection() throws {
        let text = """
        graph g
        input %x: f32[N,5,8]
        const @qkv/kernel: f32[8,24] kernel
        const @q_scale: f32[] literal = 0.5
        const @k_scale: f32[] literal = 0.5
        %qkv = dense(%x, @qkv/kernel) : f32[N,5,24]
        %heads = reshape(%qkv) {shape=[0,5,3,2,4]} : f32[N,5,3,2,4]
        %moved = transpose(%heads) {perm=[2,0,3,1,4]} : f32[3,N,2,5,4]
        %q_part, %k_part, %v_part = split(%moved) {axis=0} : f32[1,N,2,5,4], f32[1,N,2,5,4], f32[1,N,2,5,4]
        %q = squeeze(%q_part) {axes=[0]} : f32[N,2,5,4]
        %k = squeeze(%k_part) {axes=[0]} : f32[N,2,5,4]
        %v = squeeze(%v_part) {axes=[0]} : f32[N,2,5,4]
        %k_t = transpose(%k) {perm=[0,1,3,2]} : f32[N,2,4,5]
        %q_scaled = mul(%q, @q_scale) : f32[N,2,5,4]
        %k_scaled = mul(%k_t, @k_scale) : f32[N,2,4,5]
        %scores = matmul(%q_scaled, %k_scaled) : f32[N,2,5,5]
        %probabilities = softmax(%scores) {axis=-1} : f32[N,2,5,5]
        %context = matmul(%probabilities, %v) : f32[N,2,5,4]
        %tokens = transpose(%context) {perm=[0,2,1,3]} : f32[N,5,2,4]
        %rows = reshape(%tokens) {shape=[0,5,8]} : f32[N,5,8]
        output y = %rows
        """
        let graph = bindTestWeights(try parseIR(text))
        let result = try optimized(graph, [AttentionRecognition(), DeadCodeElimination()])
        let attention = try XCTUnwrap(result.graph.nodes.first { $0.op == .attention })
        XCTAssertEqual(attention.attributes.ints("offsets"), [0, 8, 16])
        XCTAssertEqual(attention.attributes.float("scale"), 0.25)
        XCTAssertEqual(Set(attention.inputs.prefix(3)), ["qkv"])
        XCTAssertEqual(result.graph.count(.split) + result.graph.count(.matmul) + result.graph.count(.softmax), 0)
        for batch in [1, 3] { try assertEquivalent(graph, result.graph, batch: batch) }
    }

    /// A mask computed at run time is not a constant to fold: the block stays as it was.
    func testRunTimeMasksAreKept() throws {
        let text = Self.windowAttention(mask: "%x_mask").replacingOccurrences(
            of: "%windows = reshape", with: "%x_mask = reshape(%x) {shape=[-1,2,1,3,8]} : f32[N,2,1,3,8]\n%windows = reshape")
            .replacingOccurrences(of: "%masked = add(%per_image, %x_mask) : f32[N,2,2,3,3]",
                                  with: "%mask_rows = slice(%x_mask) {axes=[4], ends=[3], starts=[0]} : f32[N,2,1,3,3]\n%masked = add(%per_image, %mask_rows) : f32[N,2,2,3,3]")
        let graph = bindTestWeights(try parseIR(text))
        let result = try optimized(graph, [AttentionRecognition()])
        XCTAssertEqual(result.graph.count(.attention), 0)
        try assertEquivalent(graph, result.graph, batch: 2)
    }
}
