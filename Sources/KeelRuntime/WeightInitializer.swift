import KeelIR

/// Deterministic stand-in weights for graphs run before real weights exist: Keras's default
/// initialisers (Glorot-uniform kernels, zero biases, BN gamma 1 / beta 0 / mean 0 / variance 1).
///
/// Each constant draws from its own stream seeded by (seed, name), so adding a layer does not
/// change the weights of the others, and the values are the same on every machine.
public enum WeightInitializer {
    public static func initialize(_ constant: Constant, seed: UInt64) -> TensorData? {
        guard let shape = constant.type.shape.knownExtents else { return nil }
        let count = shape.reduce(1, *)
        switch constant.role {
        case .kernel:
            let (fanIn, fanOut) = fans(of: shape)
            let limit = (6.0 / Double(max(fanIn + fanOut, 1))).squareRoot()
            var generator = SplitMix64(seed: seed ^ stableHash(constant.name.utf8))
            let values = (0..<count).map { _ in Float((generator.nextUnit() * 2 - 1) * limit) }
            return TensorData(floats: values, shape: shape)
        case .bias, .beta, .movingMean:
            return TensorData(floats: [Float](repeating: 0, count: count), shape: shape)
        case .gamma, .movingVariance:
            return TensorData(floats: [Float](repeating: 1, count: count), shape: shape)
        case .literal:
            return nil
        }
    }

    /// Keras's fan computation: the receptive field times input/output channels. Kernels are
    /// HWIO ([kh, kw, in, out]) or [in, out] for dense, as the .keel front end declares them.
    static func fans(of shape: [Int]) -> (Int, Int) {
        guard shape.count >= 2 else { return (shape.first ?? 1, shape.first ?? 1) }
        let receptiveField = shape.dropLast(2).reduce(1, *)
        return (shape[shape.count - 2] * receptiveField, shape[shape.count - 1] * receptiveField)
    }

}

/// FNV-1a: stable across runs and machines, unlike Swift's seeded `Hasher` (weight seeds,
/// .keelc header checksums).
public func stableHash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// A tiny, well-mixed generator; quality is ample for initial weights and test data.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
