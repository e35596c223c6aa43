/// Thread settings shared by every kernel. One value drives both OpenBLAS (for GEMMs) and Keel's
/// own loops, so a runtime has a single knob. Keel's loops split work into disjoint contiguous
/// chunks and never split a reduction across threads, so results do not depend on `threads`
/// (OpenBLAS may reassociate sums; that is the only difference allowed).
import COpenBLAS
import Dispatch

public struct KernelContext: Sendable, Equatable {
    /// Number of threads for GEMMs and parallel loops; at least 1.
    public var threads: Int

    public init(threads: Int = 1) {
        self.threads = max(1, threads)
    }

    /// A context that runs everything on the calling thread.
    public static let singleThreaded = KernelContext(threads: 1)

    /// Keeps OpenBLAS on the calling thread: Keel splits GEMMs over its own threads instead
    /// (`sgemm`). After a call on several threads OpenBLAS's workers spin in `sched_yield` for a
    /// while, and on two cores that spinning took a quarter of the CPU away from the next steps.
    /// OpenBLAS keeps this as a process-wide setting, so every GEMM entry point sets it again.
    func applyToBLAS() {
        BLASCoreSelection.applied
        openblas_set_num_threads(1)
    }

    /// Runs `body` over contiguous chunks covering `0..<count`, in parallel when `threads > 1`.
    /// `minimumChunk` keeps tiny workloads on one thread, where dispatch would cost more than it saves.
    func forEachChunk(_ count: Int, minimumChunk: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(1, minimumChunk)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { body(start..<end) }
        }
    }
}

/// Work (in elements touched) below which a loop stays on one thread.
let parallelGrain = 16_384
