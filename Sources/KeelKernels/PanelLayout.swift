/// Where a packed right-hand operand of the panel GEMM keeps each value: a [depth][columns]
/// matrix cut into 32-column panels, each stored [depth][32] (interleaved) or as two [depth][16]
/// halves (split). AVX2's GEMM passes over one 16-column half of a panel at a time, and a half of
/// an interleaved panel is every other cache line, which only half of the L1's sets can hold:
/// split, the same blocks ran 4–30% faster on Zen 3. The GEMM reads either layout on every CPU,
/// so weights packed on one machine run on another.
import CSIMDKernels

public struct PanelLayout: Sendable, Equatable {
    /// Rows of the matrix (the GEMM's K).
    public let depth: Int
    public let splitHalves: Bool

    static let width = PanelGEMM.panel
    static let half = PanelGEMM.half

    /// The layout this CPU's GEMM reads fastest.
    public init(depth: Int) {
        self.init(depth: depth, splitHalves: KernelTable.current.sgemm_split_panels != 0)
    }

    public init(depth: Int, splitHalves: Bool) {
        self.depth = depth
        self.splitHalves = splitHalves
    }

    /// Floats from one panel to the next.
    var panelStride: Int { depth * Self.width }

    /// Where (row p, column) is, from the first panel's start.
    @inline(__always)
    func offset(depth p: Int, column: Int) -> Int {
        let panel = column / Self.width, lane = column % Self.width
        return panel * panelStride + (splitHalves ? (lane / Self.half) * depth * Self.half + p * Self.half + lane % Self.half
                                                  : p * Self.width + lane)
    }

    /// Panels starting at `base` as the GEMM's right operand.
    func right(_ base: UnsafePointer<Float>) -> keel_gemm_right {
        keel_gemm_right(base: base, depth_step: splitHalves ? Self.half : Self.width, panel_step: panelStride, padded: 1,
                        half_step: splitHalves ? depth * Self.half : Self.half)
    }
}
