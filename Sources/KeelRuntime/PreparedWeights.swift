import Foundation
import KeelKernels

/// Weights in the form their kernels want, computed on first use and kept for every later plan
/// (a batch of 8 reuses the filters packed for a batch of 1), or seeded from a compiled model file.
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

    func seed(_ key: String, _ value: Any) {
        lock.lock()
        defer { lock.unlock() }
        entries[key] = value
    }

    /// Every conv filter prepared so far, ordered by key so files come out the same each time.
    var filters: [PreparedFilter] {
        lock.lock()
        defer { lock.unlock() }
        return entries.keys.sorted().compactMap { key in
            switch entries[key] {
            case let winograd as WinogradWeights where key.hasPrefix("winograd:"):
                return PreparedFilter(constant: String(key.dropFirst("winograd:".count)), weights: .winograd(winograd))
            case let packed as PackedConv2DWeights where key.hasPrefix("conv:"):
                return PreparedFilter(constant: String(key.dropFirst("conv:".count)), weights: .packed(packed))
            default:
                return nil
            }
        }
    }
}
