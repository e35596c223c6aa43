import Foundation
import Keel

/// `keel bench --callers N`: N threads running one shared compiled model at once, against the
/// same runs made one after another, so the cost and the gain of concurrent `run` calls (one
/// plan and arena per caller, see `CompiledModel`) are measured rather than assumed.
struct ConcurrentBench {
    var callers: Int
    var runsPerCaller: Int
    /// Threads each run splits its work over; nil keeps the model's own.
    var threadsPerRun: Int?

    struct Result: Encodable {
        var callers: Int
        var runs_per_caller: Int
        var threads_per_run: Int
        /// Every run one after another, then the same runs from `callers` threads at once.
        var serial_ms: Double
        var concurrent_ms: Double
        /// Runs per second concurrently over runs per second serially.
        var speedup: Double
    }

    func measure(_ model: CompiledModel, inputs: [String: Tensor]) throws -> Result {
        let threads = threadsPerRun ?? model.context.threads
        let runOnce = { _ = try model.run(inputs, threads: threads) }
        // One untimed run per caller at once first, so each caller's plan exists before timing.
        _ = try timeCallers(runs: 1, runOnce)
        let serialStart = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<(callers * runsPerCaller) { try runOnce() }
        let serial = Double(DispatchTime.now().uptimeNanoseconds - serialStart) / 1e6
        let concurrent = try timeCallers(runs: runsPerCaller, runOnce)
        return Result(callers: callers, runs_per_caller: runsPerCaller, threads_per_run: threads,
                      serial_ms: serial, concurrent_ms: concurrent, speedup: serial / max(concurrent, 1e-9))
    }

    /// Milliseconds until `callers` threads (real ones, not a pool sized to the cores) have each made `runs` runs.
    private func timeCallers(runs: Int, _ body: @escaping () throws -> Void) throws -> Double {
        let errors = ErrorSlot()
        let done = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<callers {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do { for _ in 0..<runs { try body() } } catch { errors.keep(error) }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        if let error = errors.first { throw error }
        return elapsed
    }
}

/// The first error any caller thread threw.
private final class ErrorSlot: @unchecked Sendable {
    private var error: Error?
    private let lock = NSLock()

    func keep(_ error: Error) {
        lock.lock()
        if self.error == nil { self.error = error }
        lock.unlock()
    }

    var first: Error? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}
