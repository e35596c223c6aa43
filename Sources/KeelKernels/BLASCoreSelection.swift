/// OpenBLAS picks its kernels from a table of CPU models it knew when it was built. On a newer
/// CPU it does not recognise (Debian's 0.3.21 on an Emerald Rapids Xeon, say) it falls back to
/// its SSE3 "Prescott" kernels, a quarter of the machine's AVX-512 throughput. When that fallback
/// happened and the user has not chosen a core with OPENBLAS_CORETYPE, Keel asks OpenBLAS to
/// redo its selection for the newest family the CPU's features support, before the first GEMM.
/// OpenBLAS itself still checks the features and falls back again if they are missing.
import COpenBLAS
import Foundation

enum BLASCoreSelection {
    /// Runs once, on first use.
    static let applied: Void = {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let name = openblas_get_corename(), String(cString: name) == "Prescott",
              let core = preferredCore() else { return }
        reselect(core)
    }()

    /// The OpenBLAS core family matching this CPU's vector extensions, from the kernel's flags.
    static func preferredCore() -> String? {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Clears OpenBLAS's active kernel table and reruns its dynamic selection with `core` forced
    /// through the environment variable it reads, which is removed again afterwards.
    static func reselect(_ core: String) {
        guard let process = dlopen(nil, RTLD_NOW),
              let table = dlsym(process, "gotoblas"),
              let initialiser = dlsym(process, "gotoblas_dynamic_init") else { return }
        let dynamicInit = unsafeBitCast(initialiser, to: (@convention(c) () -> Void).self)
        let active = table.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        let previous = active.pointee
        setenv("OPENBLAS_CORETYPE", core, 1)
        active.pointee = nil
        dynamicInit()
        unsetenv("OPENBLAS_CORETYPE")
        if active.pointee == nil { active.pointee = previous }
    }
}
