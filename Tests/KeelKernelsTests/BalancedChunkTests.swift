/// `KernelContext.forEachBalancedChunk`: shares sized by each thread's measured speed. Whatever
/// the sizes, every index runs exactly once, in contiguous chunks of at least one index, each with
/// its own chunk index for scratch; and a thread that runs slower ends up with the smaller share.
import CSIMDKernels
import Dispatch
import Foundation
@testable import KeelKernels
import XCTest

final class BalancedChunkTests: XCTestCase {
    func testEveryIndexRunsOnceInContiguousChunksWithDistinctIndices() {
        for threads in [1, 2, 3, 5] {
            for count in [1, 2, 3, 7, 64, 1001] {
                for chunks in [1, 2, 4, 8] {
                    var marks = [Int](repeating: 0, count: count)
                    var ranges = [Range<Int>?](repeating: nil, count: 8)
                    let lock = NSLock()
                    marks.withUnsafeMutableBufferPointer { buffer in
                        let base = buffer.baseAddress!
                        KernelContext(threads: threads).forEachBalancedChunk(count, chunks: chunks) { range, index in
                            for item in range { base[item] += 1 }
                            lock.lock()
                            XCTAssertNil(ranges[index], "chunk index \(index) given twice")
                            ranges[index] = range
                            lock.unlock()
                        }
                    }
                    let label = "threads \(threads), count \(count), chunks \(chunks)"
                    XCTAssertEqual(marks, [Int](repeating: 1, count: count), label)
                    let expected = min(threads, count, chunks)
                    let given = ranges.compactMap { $0 }.sorted { $0.lowerBound < $1.lowerBound }
                    XCTAssertEqual(given.count, expected, label)
                    XCTAssertTrue(given.allSatisfy { !$0.isEmpty }, label)
                    XCTAssertEqual(given.first?.lowerBound, 0, label)
                    XCTAssertEqual(given.last?.upperBound, count, label)
                    for (left, right) in zip(given, given.dropFirst()) {
                        XCTAssertEqual(left.upperBound, right.lowerBound, label)
                    }
                }
            }
        }
    }

    func testNestedCallRunsItsOneShareInline() {
        var marks = [Int](repeating: 0, count: 4 * 30)
        marks.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            let context = KernelContext(threads: 2)
            context.forEachChunk(4, minimumChunk: 1) { rows in
                for row in rows {
                    context.forEachBalancedChunk(30, minimumChunk: 1) { columns, index in
                        XCTAssertEqual(index, 0)
                        XCTAssertEqual(columns, 0..<30)
                        for column in columns { base[row * 30 + column] += 1 }
                    }
                }
            }
        }
        XCTAssertEqual(marks, [Int](repeating: 1, count: 4 * 30))
    }

    /// Items cost five times more off the calling thread; after a few dozen jobs the caller's share
    /// must be the larger one (at 5× it converges to 5/6 of the items). Needs the worker to take
    /// part in enough of them, and chunks that take the time their items cost: on a machine so
    /// loaded that the worker sits out or threads are descheduled mid-chunk (a concurrent build
    /// made the caller look the slower one), the test says so and skips. The caller's share is the
    /// size of share 0, not what the caller ran: in a CI run the worker once ran both shares of
    /// the last job while the caller was descheduled.
    func testASlowerThreadGetsTheSmallerShare() throws {
        let context = KernelContext(threads: 2)
        let caller = pthread_self()
        let count = 400
        var workerJobs = 0
        var disturbedJobs = 0
        var callerShare = 0
        for _ in 0..<40 {
            var ranOnWorker = false
            var disturbed = false
            var share = 0
            let lock = NSLock()
            context.forEachBalancedChunk(count, minimumChunk: 1) { range, index in
                let onCaller = pthread_equal(pthread_self(), caller) != 0
                let start = DispatchTime.now().uptimeNanoseconds
                let cost = UInt64(range.count) * (onCaller ? 10_000 : 50_000)
                while DispatchTime.now().uptimeNanoseconds - start < cost {}
                let overran = DispatchTime.now().uptimeNanoseconds - start > cost + cost / 2 + 500_000
                lock.lock()
                // Share 0 is the one sized for the caller, whichever thread ended up running it
                // (a worker takes a share left over when the caller is late).
                if index == 0 { share = range.count }
                if !onCaller { ranOnWorker = true }
                if overran { disturbed = true }
                lock.unlock()
            }
            if ranOnWorker { workerJobs += 1 }
            if disturbed { disturbedJobs += 1 }
            callerShare = share
        }
        guard workerJobs >= 20 else {
            throw XCTSkip("the pool's worker ran only \(workerJobs) of 40 jobs on this loaded machine")
        }
        guard disturbedJobs <= 4 else {
            throw XCTSkip("threads were descheduled mid-chunk in \(disturbedJobs) of 40 jobs on this loaded machine")
        }
        XCTAssertGreaterThan(callerShare, count * 6 / 10, "caller's share after 40 jobs")
    }
}
