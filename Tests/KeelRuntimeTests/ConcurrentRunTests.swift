import Foundation
import KeelFormat
import KeelIR
import KeelPasses
import XCTest
@testable import KeelRuntime

/// One CompiledModel shared by several threads: concurrent runs each get a plan (and arena) of
/// their own, so they neither wait for each other nor mix their intermediates.
final class ConcurrentRunTests: XCTestCase {
    private func model() throws -> CompiledModel {
        let source = """
        model shared
        input image: f32[N, 12, 12, 8]
        conv = conv2d(16, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        flat = flatten()
        logits = dense(10)
        output logits
        """
        return try CompiledModel(graph: try seededGraph(source, path: "shared.keel", seed: 3), context: ExecutionContext(threads: 1))
    }

    private func image(seed: Int, batch: Int) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: UInt64(seed))
        let count = batch * 12 * 12 * 8
        return ["image": try Tensor(shape: [batch, 12, 12, 8], values: (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) })]
    }

    /// Each of 8 inputs (batches of 1 and 3) run alone, one at a time, on a model of its own gives
    /// the reference; 8 threads then run all of them, 5 times over, on one shared model.
    func testConcurrentRunsGiveTheSerialResults() throws {
        let inputs = try (0..<8).map { try image(seed: $0, batch: $0 % 2 == 0 ? 1 : 3) }
        let expected = try inputs.map { try model().run($0) }
        let shared = try model()
        let results = LockedResults(count: inputs.count * 5)
        DispatchQueue.concurrentPerform(iterations: inputs.count * 5) { index in
            results.set(index, Result { try shared.run(inputs[index % inputs.count]) })
        }
        for index in 0..<(inputs.count * 5) {
            XCTAssertEqual(try results.get(index).get(), expected[index % inputs.count], "run \(index)")
        }
        // Runs that overlapped built plans of their own, kept for reuse; never more than the runs.
        XCTAssertGreaterThanOrEqual(shared.planCount(for: ["N": 1]), 1)
        XCTAssertLessThanOrEqual(shared.planCount(for: ["N": 1]), inputs.count * 5 / 2)
    }

    /// A run's thread count is the caller's choice: each count gets plans of its own (a plan's
    /// scratch and work split depend on it), the results match the model's own thread count,
    /// and counts no plan can honour are refused rather than clamped.
    func testThreadsChosenPerRunAreHonouredOrRefused() throws {
        let shared = try model()
        let input = try image(seed: 7, batch: 2)
        let expected = try shared.run(input)
        for threads in [2, 3] {
            XCTAssertEqual(try shared.run(input, threads: threads), expected, "\(threads) threads")
            XCTAssertEqual(shared.planCount(for: ["N": 2], threads: threads), 1, "a plan built for \(threads) threads")
        }
        XCTAssertEqual(shared.planCount(for: ["N": 2]), 1, "the model's own thread count keeps its plan")
        for threads in [0, -1, ExecutionContext.maximumThreads + 1] {
            XCTAssertThrowsError(try shared.run(input, threads: threads)) { error in
                XCTAssertEqual(error as? RuntimeError, .invalidThreads(threads))
                XCTAssertEqual("\(error)", "cannot run on \(threads) threads: the thread count must be from 1 to 1024")
            }
        }
        XCTAssertEqual(shared.planCount(for: ["N": 2], threads: 0), 0, "nothing built for a refused count")
    }

    /// Callers that each pick one thread, running at once, get the serial results.
    func testConcurrentRunsWithTheirOwnThreadCounts() throws {
        let inputs = try (0..<4).map { try image(seed: 20 + $0, batch: 1) }
        let expected = try inputs.map { try model().run($0) }
        let shared = try model()
        let results = LockedResults(count: inputs.count * 3)
        DispatchQueue.concurrentPerform(iterations: inputs.count * 3) { index in
            results.set(index, Result { try shared.run(inputs[index % inputs.count], threads: 1 + index % 2) })
        }
        for index in 0..<(inputs.count * 3) {
            XCTAssertEqual(try results.get(index).get(), expected[index % inputs.count], "run \(index)")
        }
    }
}

/// Results written by concurrent runs.
private final class LockedResults: @unchecked Sendable {
    private var values: [Result<[String: Tensor], Error>?]
    private let lock = NSLock()

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Result<[String: Tensor], Error>) {
        lock.lock()
        values[index] = value
        lock.unlock()
    }

    func get(_ index: Int) throws -> Result<[String: Tensor], Error> {
        lock.lock()
        defer { lock.unlock() }
        return try XCTUnwrap(values[index])
    }
}
