import KeelIR
import KeelPasses
import XCTest

/// Golden IR-in/IR-out tests (`assertRewrite`) of the small cleanup passes; the others have theirs
/// beside their own tests.
final class PassGoldenTests: XCTestCase {
    /// The fused node takes the graph output's value name, so `y` still reads `%r`.
    func testEpilogueFusionMovesTheActivationIntoTheConvolution() throws {
        try assertRewrite(EpilogueFusion(), """
            graph g
            input %x: f32[N,4,4,3] nhwc
            const @c/kernel: f32[3,3,3,8] kernel
            const @c/bias: f32[8] bias
            %c = conv2d(%x, @c/kernel, @c/bias) {padding="same"} : f32[N,4,4,8]  # g.keel:3:1
            %r = relu(%c) : f32[N,4,4,8]  # g.keel:4:1
            output y = %r
            """, """
            graph g
            input %x: f32[N,4,4,3] nhwc
            const @c/kernel: f32[3,3,3,8] kernel
            const @c/bias: f32[8] bias
            %r = conv2d(%x, @c/kernel, @c/bias) {activation="relu", padding="same"} : f32[N,4,4,8]  # g.keel:3:1, g.keel:4:1
            output y = %r

            """)
    }

    func testEpilogueFusionCarriesTheActivationsParameters() throws {
        try assertRewrite(EpilogueFusion(), """
            graph g
            input %x: f32[N,16]
            const @d/kernel: f32[16,4] kernel
            %d = dense(%x, @d/kernel) : f32[N,4]
            %a = leaky_relu(%d) {alpha=0.1} : f32[N,4]
            %s = softmax(%a) : f32[N,4]
            output y = %s
            """, """
            graph g
            input %x: f32[N,16]
            const @d/kernel: f32[16,4] kernel
            %d = dense(%x, @d/kernel) {activation="leaky_relu", alpha=0.1} : f32[N,4]
            %s = softmax(%d) : f32[N,4]
            output y = %s

            """)
    }

    func testIdentityRemovalForwardsReaders() throws {
        try assertRewrite(IdentityRemoval(), """
            graph g
            input %x: f32[N,4]
            %i = identity(%x) : f32[N,4]
            %d = dropout(%i) {rate=0.5} : f32[N,4]
            %r = relu(%d) : f32[N,4]
            output y = %r
            """, """
            graph g
            input %x: f32[N,4]
            %r = relu(%x) : f32[N,4]
            output y = %r

            """)
    }

    func testTransposeCancellationRemovesAnInversePair() throws {
        try assertRewrite(TransposeCancellation(), """
            graph g
            input %x: f32[N,4,4,3] nhwc
            %t = transpose(%x) {perm=[0,3,1,2]} : f32[N,3,4,4]
            %u = transpose(%t) {perm=[0,2,3,1]} : f32[N,4,4,3]
            %r = relu(%u) : f32[N,4,4,3]
            output y = %r
            """, """
            graph g
            input %x: f32[N,4,4,3] nhwc
            %r = relu(%x) : f32[N,4,4,3]
            output y = %r

            """)
    }

    /// 2·[1,2,3] + [0.5] = [2.5, 4.5, 6.5], then the graph reads the folded constant.
    func testConstantFoldingEvaluatesThroughTheReferenceSemantics() throws {
        let input = """
            graph g
            input %x: f32[N,3]
            const @two: f32[1] literal frozen = [2]
            const @v: f32[3] literal frozen = [1, 2, 3]
            const @half: f32[1] literal frozen = [0.5]
            %m = mul(@two, @v) : f32[3]
            %s = add(%m, @half) : f32[3]
            %y = add(%x, %s) : f32[N,3]
            output y = %y
            """
        try assertRewrite(ConstantFolding(), input, """
            graph g
            input %x: f32[N,3]
            const @s: f32[3] literal frozen
            const @half: f32[1] literal frozen
            const @m: f32[3] literal frozen
            const @two: f32[1] literal frozen
            const @v: f32[3] literal frozen
            %y = add(%x, @s) : f32[N,3]
            output y = %y

            """)
        let folded = try ConstantFolding().run(try parseIR(input)).graph
        XCTAssertEqual(folded.constants["s"]?.data?.floats(), [2.5, 4.5, 6.5])
    }

    func testDeadCodeEliminationDropsWhatNoOutputReads() throws {
        try assertRewrite(DeadCodeElimination(), """
            graph g
            input %x: f32[N,4]
            const @unused: f32[4] literal frozen
            %a = relu(%x) : f32[N,4]
            %b = sigmoid(%x) : f32[N,4]
            output y = %a
            """, """
            graph g
            input %x: f32[N,4]
            %a = relu(%x) : f32[N,4]
            output y = %a

            """)
    }
}
