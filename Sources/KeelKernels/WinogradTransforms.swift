/// The three linear maps of Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray, with
/// interpolation points 0, ±1, ±2 and ∞): a 6×6 input tile d and 3×3 filter g give the 4×4 output
/// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A with 36 multiplies per channel pair instead of 144; and those of
/// F(2×2, 3×3) (points 0, ±1, ∞: a 4×4 tile, 16 multiplies instead of 36). The input and output
/// maps run over a vector of channels at a time (channels are contiguous in both the tile patches
/// and the transformed matrices), so one generic body serves the vector and scalar tails.

/// A value the transforms can run on: one float, or several channels at once.
protocol WinogradLane {
    static func + (lhs: Self, rhs: Self) -> Self
    static func - (lhs: Self, rhs: Self) -> Self
    static func * (lhs: Float, rhs: Self) -> Self
    static var width: Int { get }
    init(loadingFrom pointer: UnsafePointer<Float>)
    func store(to pointer: UnsafeMutablePointer<Float>)
}

extension Float: WinogradLane {
    static var width: Int { 1 }
    @inline(__always) init(loadingFrom pointer: UnsafePointer<Float>) { self = pointer.pointee }
    @inline(__always) func store(to pointer: UnsafeMutablePointer<Float>) { pointer.pointee = self }
}

extension SIMD8: WinogradLane where Scalar == Float {
    static var width: Int { 8 }
    @inline(__always) init(loadingFrom pointer: UnsafePointer<Float>) {
        self = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) func store(to pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: SIMD8<Float>.self)
    }
}

enum WinogradTransform {
    /// G (6×3) applied to three filter taps along one axis, for eight filters at once.
    @inline(__always)
    static func filter(_ g0: SIMD8<Double>, _ g1: SIMD8<Double>, _ g2: SIMD8<Double>,
                       into result: UnsafeMutablePointer<SIMD8<Double>>) {
        let even = (g0 + g2) / 6
        let odd = g1 / 6
        let evenScaled = g0 / 24 + g2 / 6
        let oddScaled = g1 / 12
        result[0] = g0 / 4
        result[1] = -even - odd
        result[2] = -even + odd
        result[3] = evenScaled + oddScaled
        result[4] = evenScaled - oddScaled
        result[5] = g2
    }

    /// F(2×2)'s G (4×3) applied to three filter taps along one axis, for eight filters at once.
    @inline(__always)
    static func smallFilter(_ g0: SIMD8<Double>, _ g1: SIMD8<Double>, _ g2: SIMD8<Double>,
                            into result: UnsafeMutablePointer<SIMD8<Double>>) {
        let even = g0 + g2
        result[0] = g0
        result[1] = (even + g1) * 0.5
        result[2] = (even - g1) * 0.5
        result[3] = g2
    }

    /// F(2×2)'s Bᵀ along one axis: (x0 − x2, x1 + x2, x2 − x1, x1 − x3).
    @inline(__always)
    static func smallInput<Lane: WinogradLane>(_ x0: Lane, _ x1: Lane, _ x2: Lane, _ x3: Lane) -> (Lane, Lane, Lane, Lane) {
        (x0 - x2, x1 + x2, x2 - x1, x1 - x3)
    }

    /// F(2×2)'s Aᵀ along one axis: (m0 + m1 + m2, m1 − m2 − m3).
    @inline(__always)
    static func smallOutput<Lane: WinogradLane>(_ m0: Lane, _ m1: Lane, _ m2: Lane, _ m3: Lane) -> (Lane, Lane) {
        (m0 + m1 + m2, m1 - m2 - m3)
    }

    /// Bᵀ applied to six values along one axis of an input tile.
    @inline(__always)
    static func input<Lane: WinogradLane>(_ x0: Lane, _ x1: Lane, _ x2: Lane, _ x3: Lane, _ x4: Lane, _ x5: Lane)
        -> (Lane, Lane, Lane, Lane, Lane, Lane) {
        let a = x4 - 4 * x2
        let b = x3 - 4 * x1
        let c = x4 - x2
        let d = 2 * (x3 - x1)
        return (4 * x0 - 5 * x2 + x4, a + b, a - b, c + d, c - d, 4 * x1 - 5 * x3 + x5)
    }

    /// Aᵀ applied to six transformed products along one axis, giving four outputs.
    @inline(__always)
    static func output<Lane: WinogradLane>(_ m0: Lane, _ m1: Lane, _ m2: Lane, _ m3: Lane, _ m4: Lane, _ m5: Lane)
        -> (Lane, Lane, Lane, Lane) {
        let a = m1 + m2
        let b = m1 - m2
        let c = m3 + m4
        let d = m3 - m4
        return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
    }

    /// Bᵀ along one axis of the tile: `side` values from `load`, as many to `store`.
    @inline(__always)
    static func inputAxis<Lane: WinogradLane>(_ tile: WinogradTile, _ load: (Int) -> Lane, _ store: (Int, Lane) -> Void) {
        switch tile {
        case .small:
            let y = smallInput(load(0), load(1), load(2), load(3))
            store(0, y.0); store(1, y.1); store(2, y.2); store(3, y.3)
        case .large:
            let y = input(load(0), load(1), load(2), load(3), load(4), load(5))
            store(0, y.0); store(1, y.1); store(2, y.2); store(3, y.3); store(4, y.4); store(5, y.5)
        }
    }

    /// Aᵀ along one axis of the tile: `side` products from `load`, m outputs to `store`.
    @inline(__always)
    static func outputAxis<Lane: WinogradLane>(_ tile: WinogradTile, _ load: (Int) -> Lane, _ store: (Int, Lane) -> Void) {
        switch tile {
        case .small:
            let y = smallOutput(load(0), load(1), load(2), load(3))
            store(0, y.0); store(1, y.1)
        case .large:
            let y = output(load(0), load(1), load(2), load(3), load(4), load(5))
            store(0, y.0); store(1, y.1); store(2, y.2); store(3, y.3)
        }
    }

    /// Bᵀ d B for `Lane.width` channels at `source` (tile element (r, s) at r·rowStride + s·columnStride),
    /// written to destination + point·pointStride for the tile's points. `temporary` holds 36 lanes.
    @inline(__always)
    static func inputTile<Lane: WinogradLane>(_: Lane.Type, _ tile: WinogradTile, source: UnsafePointer<Float>,
                                               rowStride: Int, columnStride: Int,
                                               destination: UnsafeMutablePointer<Float>,
                                               pointStride: Int, temporary: UnsafeMutablePointer<Float>) {
        let (width, side) = (Lane.width, tile.inputSize)
        for column in 0..<side {
            let base = source + column * columnStride
            inputAxis(tile, { Lane(loadingFrom: base + $0 * rowStride) },
                      { $1.store(to: temporary + ($0 * side + column) * width) })
        }
        for row in 0..<side {
            let line = temporary + row * side * width
            inputAxis(tile, { Lane(loadingFrom: line + $0 * width) },
                      { $1.store(to: destination + (row * side + $0) * pointStride) })
        }
    }

    /// Aᵀ M A (+ bias) for `Lane.width` output channels: the products at source + point·pointStride
    /// become m×m outputs at destination + (row·m + column)·outputStride. `temporary` holds 24 lanes.
    @inline(__always)
    static func outputTile<Lane: WinogradLane>(_: Lane.Type, _ tile: WinogradTile, source: UnsafePointer<Float>,
                                                pointStride: Int, bias: Lane, destination: UnsafeMutablePointer<Float>,
                                                outputStride: Int, temporary: UnsafeMutablePointer<Float>) {
        let (width, side, size) = (Lane.width, tile.inputSize, tile.outputSize)
        for column in 0..<side {
            let base = source + column * pointStride
            outputAxis(tile, { Lane(loadingFrom: base + $0 * side * pointStride) },
                       { $1.store(to: temporary + ($0 * side + column) * width) })
        }
        for row in 0..<size {
            let line = temporary + row * side * width
            outputAxis(tile, { Lane(loadingFrom: line + $0 * width) },
                       { ($1 + bias).store(to: destination + (row * size + $0) * outputStride) })
        }
    }
}
