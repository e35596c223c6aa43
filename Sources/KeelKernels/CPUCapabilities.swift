/// What this CPU offers Keel's own C kernels (CSIMDKernels), detected once at run time so one
/// binary runs everywhere. Capabilities are independent (AMX and AVX512_BF16 are extensions a CPU
/// may have either of), so code asks the kernel table whether the kernel it wants is present
/// instead of comparing levels; tests restrict the set to run every path the machine has.
import CSIMDKernels

public struct CPUCapabilities: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// AVX2 with FMA.
    public static let avx2 = CPUCapabilities(rawValue: KEEL_CPU_AVX2.rawValue)
    public static let avx512 = CPUCapabilities(rawValue: KEEL_CPU_AVX512.rawValue)
    public static let avx512BF16 = CPUCapabilities(rawValue: KEEL_CPU_AVX512_BF16.rawValue)
    /// AMX tiles with bf16 products, present only once Linux granted the tile state.
    public static let amxBF16 = CPUCapabilities(rawValue: KEEL_CPU_AMX_BF16.rawValue)
    public static let neon = CPUCapabilities(rawValue: KEEL_CPU_NEON.rawValue)

    /// The CPU's capabilities narrowed by `KEEL_SIMD` (see CSIMDKernels/cpu.c for its names).
    public static var detected: CPUCapabilities { CPUCapabilities(rawValue: keel_cpu_detected()) }

    /// Those the kernel table is filled from now.
    public static var inUse: CPUCapabilities { CPUCapabilities(rawValue: keel_cpu_in_use()) }

    /// Refills the kernel table from `detected ∩ allowed` for the whole process; only between runs.
    public static func restrict(to allowed: CPUCapabilities) { keel_cpu_restrict(allowed.rawValue) }

    /// Lifts any `restrict(to:)`.
    public static func restoreDetected() { keel_cpu_restrict(UInt32.max) }

    /// The nested sets tests step through, from none of Keel's SIMD kernels to everything
    /// detected: each adds the next capability this CPU has.
    public static var everyPathPresent: [CPUCapabilities] {
        var sets: [CPUCapabilities] = [[]]
        var accumulated: CPUCapabilities = []
        for capability in [CPUCapabilities.avx2, .avx512, .avx512BF16, .amxBF16, .neon] where detected.contains(capability) {
            accumulated.insert(capability)
            sets.append(accumulated)
        }
        return sets
    }

    /// "AVX2+AVX-512+AVX512_BF16+AMX-BF16", or "generic" for none.
    public var description: String {
        let names: [(CPUCapabilities, String)] = [(.avx2, "AVX2"), (.avx512, "AVX-512"), (.avx512BF16, "AVX512_BF16"),
                                                   (.amxBF16, "AMX-BF16"), (.neon, "NEON")]
        let present = names.filter { contains($0.0) }.map(\.1)
        return present.isEmpty ? "generic" : present.joined(separator: "+")
    }
}

/// The kernel entry points filled once from `CPUCapabilities.inUse`; an entry is nil where no
/// body runs on this CPU, and the caller then takes its portable path.
enum KernelTable {
    static var current: keel_kernel_table { keel_kernels().pointee }
}
