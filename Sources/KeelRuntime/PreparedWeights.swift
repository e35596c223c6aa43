import Foundation
import KeelKernels

/// Weights in the form their kernels want, computed on first use and kept for every later plan
/// (a batch of 8 reuses the filters packed for a batch of 1).
final class PreparedWeights: @unchecked Sendable {
    private var entries: [String: Any] = [:]
    private let lock = NSLock()

    func value<T>(_ key: String, _ make: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if let existing = entries[key] as? T { return existing }
        let made = try make()
        entries[key] = made
        return made
    }
}
