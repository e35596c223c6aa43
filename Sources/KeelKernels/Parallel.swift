/// Thread settings shared by every kernel. One value drives both OpenBLAS (for GEMMs) and Keel's
/// own loops, so a runtime has a single knob. Keel's loops split work into disjoint contiguous
/// chunks and never split a reduction across threads, so results do not depend on `threads`
/// (OpenBLAS may reassociate sums; that is the only difference allowed).
import COpenBLAS
import CSIMDKernels
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
    /// `minimumChunk` keeps tiny workloads on one thread, where a hand-off would cost more than it
    /// saves. Chunks go to the process's persistent worker pool (CSIMDKernels/worker_pool.c); the
    /// calling thread runs chunks too. Chunk bounds depend only on `count`, `minimumChunk` and
    /// `threads`, never on which thread runs a chunk. A call from inside a chunk runs inline; while
    /// another caller (a concurrent runtime) holds the pool, this one uses Dispatch instead.
    func forEachChunk(_ count: Int, minimumChunk: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(1, minimumChunk)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = ChunkJob(count: count, chunks: chunks, body: body)
            let ran = withUnsafeMutablePointer(to: &job) { pointer in
                keel_pool_run(chunks, threads - 1, { context, chunk in
                    guard let job = context?.assumingMemoryBound(to: ChunkJob.self).pointee else { return }
                    job.run(chunk)
                }, pointer)
            }
            if ran == 0 {
                DispatchQueue.concurrentPerform(iterations: chunks) { job.run($0) }
            }
        }
    }
}

extension KernelContext {
    /// Runs `body` over contiguous chunks covering `0..<count`, one per thread, each sized by how
    /// fast its thread ran earlier ones (CSIMDKernels/worker_pool.c, `keel_pool_run_balanced`):
    /// an even split left the faster core waiting whenever the other ran slower. Chunk bounds
    /// vary from run to run, so only for work whose results do not depend on them (a GEMM's
    /// row or column ranges, tiles, output rows). `body` also gets the chunk's index, below
    /// `min(threads, count)`, for per-thread scratch. Falls back to even chunks while another caller
    /// holds the pool.
    func forEachBalancedChunk(_ count: Int, minimumChunk: Int, _ body: (Range<Int>, Int) -> Void) {
        forEachBalancedChunk(count, chunks: min(threads, max(1, count / max(1, minimumChunk))), body)
    }

    /// The same in exactly `min(chunks, count)` chunks (at most one per thread).
    func forEachBalancedChunk(_ count: Int, chunks wanted: Int, _ body: (Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        let chunks = min(wanted, count, threads)
        if chunks <= 1 {
            body(0..<count, 0)
            return
        }
        let ran = withoutActuallyEscaping(body) { body in
            var job = BalancedJob(body: body)
            return withUnsafeMutablePointer(to: &job) { pointer in
                keel_pool_run_balanced(count, chunks, { context, first, end, index in
                    context?.assumingMemoryBound(to: BalancedJob.self).pointee.body(first..<end, index)
                }, pointer)
            }
        }
        if ran == 0 {
            forEachChunk(chunks, minimumChunk: 1) { indices in
                for index in indices { body((count * index / chunks)..<(count * (index + 1) / chunks), index) }
            }
        }
    }
}

extension KernelContext {
    /// Runs `body` over `count` items cut into `piecesPerThread · threads` contiguous pieces (fewer
    /// when `minimumPiece` asks): each thread runs its own share of pieces front to back, then takes
    /// pieces from the back of the others' shares (CSIMDKernels `keel_pool_run_units`). A thread
    /// the host deschedules in the middle of a job so hands the rest of its share to the other,
    /// where shares sized in advance wait for it. Piece bounds depend only on `count`; `body` gets
    /// the running thread's index (below `threads`) for per-thread scratch.
    func forEachStolenPiece(_ count: Int, minimumPiece: Int, piecesPerThread: Int = 4,
                            _ body: (Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        let pieces = min(count, threads * piecesPerThread, max(1, count / max(1, minimumPiece)))
        if pieces <= 1 || threads <= 1 {
            body(0..<count, 0)
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = StolenPieceJob(count: count, pieces: pieces, body: body)
            withUnsafeMutablePointer(to: &job) { pointer in
                keel_pool_run_units(pieces, min(threads, pieces), { context, piece, participant in
                    guard let job = context?.assumingMemoryBound(to: StolenPieceJob.self).pointee else { return }
                    job.body((job.count * piece / job.pieces)..<(job.count * (piece + 1) / job.pieces), participant)
                }, pointer)
            }
        }
    }
}

private struct StolenPieceJob {
    let count: Int
    let pieces: Int
    let body: (Range<Int>, Int) -> Void
}

private struct BalancedJob {
    let body: (Range<Int>, Int) -> Void
}

/// One `forEachChunk` call as the worker pool sees it: chunk `index` covers an equal share.
private struct ChunkJob {
    let count: Int
    let chunks: Int
    let body: (Range<Int>) -> Void

    func run(_ index: Int) {
        let start = count * index / chunks
        let end = count * (index + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Work (in elements touched) below which a loop stays on one thread.
let parallelGrain = 16_384
