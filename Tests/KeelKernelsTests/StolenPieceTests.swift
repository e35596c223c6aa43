/// `KernelContext.forEachStolenPiece`: pieces fixed by the count alone, each run exactly once by
/// some thread, whichever thread takes it; the thread index stays below the thread count, and no
/// two pieces run at once under one index (per-thread scratch stays private).
import Foundation
@testable import KeelKernels
import XCTest

final class StolenPieceTests: XCTestCase {
    func testEveryIndexRunsOnceInFixedPiecesWithAThreadIndexBelowTheThreadCount() {
        for threads in [1, 2, 3, 5] {
            for count in [1, 2, 3, 7, 64, 1001] {
                for minimumPiece in [1, 5, 100] {
                    var marks = [Int](repeating: 0, count: count)
                    var pieces: [Range<Int>] = []
                    var running = [Int](repeating: 0, count: threads)
                    let lock = NSLock()
                    marks.withUnsafeMutableBufferPointer { buffer in
                        let base = buffer.baseAddress!
                        KernelContext(threads: threads).forEachStolenPiece(count, minimumPiece: minimumPiece) { range, thread in
                            lock.lock()
                            XCTAssertLessThan(thread, threads)
                            running[thread] += 1
                            XCTAssertEqual(running[thread], 1, "two pieces at once under thread index \(thread)")
                            pieces.append(range)
                            lock.unlock()
                            for item in range { base[item] += 1 }
                            lock.lock()
                            running[thread] -= 1
                            lock.unlock()
                        }
                    }
                    let label = "threads \(threads), count \(count), minimum piece \(minimumPiece)"
                    XCTAssertEqual(marks, [Int](repeating: 1, count: count), label)
                    // The bounds are count · i / pieces for the piece count the arguments fix.
                    let expected = threads == 1 ? 1 : min(count, threads * 4, max(1, count / minimumPiece))
                    let sorted = pieces.sorted { $0.lowerBound < $1.lowerBound }
                    XCTAssertEqual(sorted.count, expected, label)
                    for (index, piece) in sorted.enumerated() {
                        XCTAssertEqual(piece, (count * index / expected)..<(count * (index + 1) / expected), label)
                    }
                }
            }
        }
    }
}
