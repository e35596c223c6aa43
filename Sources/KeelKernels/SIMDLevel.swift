/// The instruction-set level Keel's own C kernels run at (CSIMDKernels). It is detected from the
/// CPU at run time so one binary runs everywhere; tests cap it to exercise every path.
import CSIMDKernels

public enum SIMDLevel: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    /// Portable Swift loops and OpenBLAS only.
    case generic = 0
    case avx2 = 1
    case avx512 = 2

    /// The widest level this CPU supports (lowered by `KEEL_SIMD=generic|avx2|avx512`).
    public static var detected: SIMDLevel { SIMDLevel(keel_simd_detected_level()) }

    /// The level kernels use now.
    public static var inUse: SIMDLevel { SIMDLevel(keel_simd_level_in_use()) }

    /// Caps the level for the whole process (a cap above `detected` has no effect).
    public static func limit(to level: SIMDLevel) {
        keel_simd_limit_level(keel_simd_level(rawValue: UInt32(level.rawValue)))
    }

    init(_ level: keel_simd_level) {
        self = SIMDLevel(rawValue: Int(level.rawValue)) ?? .generic
    }

    public static func < (lhs: SIMDLevel, rhs: SIMDLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .generic: return "generic"
        case .avx2: return "AVX2"
        case .avx512: return "AVX-512"
        }
    }
}
