import XCTest
@testable import KeelRuntime

final class MemoryPlannerTests: XCTestCase {
    func testChainReusesTwoBuffers() {
        // a -> b -> c -> d: each buffer lives from its step to the next; sizes by hand.
        let requests = [
            BufferRequest(size: 64, firstStep: 0, lastStep: 1),
            BufferRequest(size: 32, firstStep: 1, lastStep: 2),
            BufferRequest(size: 64, firstStep: 2, lastStep: 3),
            BufferRequest(size: 16, firstStep: 3, lastStep: 4),
        ]
        let plan = MemoryPlanner.plan(requests)
        XCTAssertEqual(plan.naiveSize, 176)
        // Peak live pair is 64 + 32 = 96; greedy-by-size achieves it here.
        XCTAssertEqual(plan.arenaSize, 96)
        assertNoOverlap(requests, plan)
    }

    func testDisjointLifetimesShareOffsetZero() {
        let requests = [
            BufferRequest(size: 100, firstStep: 0, lastStep: 0),
            BufferRequest(size: 100, firstStep: 1, lastStep: 1),
        ]
        let plan = MemoryPlanner.plan(requests)
        XCTAssertEqual(plan.offsets, [0, 0])
        XCTAssertEqual(plan.arenaSize, 112)
    }

    func testRandomPlansNeverOverlap() {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<50 {
            let requests = (0..<20).map { _ -> BufferRequest in
                let start = Int(generator.next() % 30)
                return BufferRequest(size: Int(generator.next() % 500) + 1, firstStep: start,
                                     lastStep: start + Int(generator.next() % 6))
            }
            assertNoOverlap(requests, MemoryPlanner.plan(requests))
        }
    }

    private func assertNoOverlap(_ requests: [BufferRequest], _ plan: MemoryPlan, file: StaticString = #filePath, line: UInt = #line) {
        for i in requests.indices {
            XCTAssertEqual(plan.offsets[i] % 16, 0, file: file, line: line)
            XCTAssertLessThanOrEqual(plan.offsets[i] + requests[i].size, plan.arenaSize, file: file, line: line)
            for j in requests.indices where j > i && requests[i].overlapsInTime(requests[j]) {
                let disjoint = plan.offsets[i] + requests[i].size <= plan.offsets[j]
                    || plan.offsets[j] + requests[j].size <= plan.offsets[i]
                XCTAssertTrue(disjoint, "buffers \(i) and \(j) overlap", file: file, line: line)
            }
        }
    }
}
