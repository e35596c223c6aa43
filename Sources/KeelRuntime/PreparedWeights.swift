import Foundation
import KeelIR
import KeelKernels

/// Weights in the form their kernels want, computed on first use and kept for every later plan
/// (a batch of 8 reuses the filters packed for a batch of 1), or seeded from a compiled model file.
///
/// It also holds the original values of filters that only conv2d reads, and is their only
/// holder: each original is dropped as soon as a prepared form of it exists and the plan being
/// built has no further use for it, so a model never holds a filter's values and all of its
/// prepared forms at once (the mapped or parsed weights of the file are freed filter by filter).
final class PreparedWeights: @unchecked Sendable {
    private var entries: [String: Any] = [:]
    private var originals: [String: TensorData] = [:]
    private let lock = NSLock()

    func value<T>(_ key: String, _ make: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if let existing = entries[key] as? T { return existing }
        let made = try make()
        entries[key] = made
        return made
    }

    /// The entry under `key` if it was prepared already; never prepares it.
    func existing<T>(_ key: String, as type: T.Type = T.self) -> T? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key] as? T
    }

    func seed(_ key: String, _ value: Any) {
        lock.lock()
        defer { lock.unlock() }
        entries[key] = value
    }

    /// Hands over the values of a filter that only conv2d reads.
    func holdOriginal(_ name: String, _ data: TensorData) {
        lock.lock()
        defer { lock.unlock() }
        originals[name] = data
    }

    /// A filter's original values, until `releaseOriginal` drops them.
    func original(_ name: String) -> TensorData? {
        lock.lock()
        defer { lock.unlock() }
        return originals[name]
    }

    /// Drops a filter's original values if some prepared form of them exists (later plans
    /// derive whatever they need from that form); otherwise keeps them.
    func releaseOriginal(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        guard originals[name] != nil,
              PreparedFilter.Kind.allCases.contains(where: { entries[PreparedFilter.key($0, name)] != nil })
                || [ActivationLayout.nhwc, .nchw].contains(where: { entries[PreparedFilter.panelKey(name, layout: $0)] != nil })
        else { return }
        originals[name] = nil
    }

    /// Names of the filters whose originals are still held.
    var heldOriginals: [String] {
        lock.lock()
        defer { lock.unlock() }
        return Array(originals.keys)
    }

    /// Every conv filter prepared so far, ordered by key so files come out the same each time.
    /// Filters packed for the panel GEMM are given in the row-major packing files store.
    func filters() throws -> [PreparedFilter] {
        lock.lock()
        defer { lock.unlock() }
        let (winogradPrefix, packedPrefix) = (PreparedFilter.key(.winograd, ""), PreparedFilter.key(.packed, ""))
        let bf16Prefix = PreparedFilter.key(.bf16, "")
        var rowMajor: [String: PackedConv2DWeights] = [:]
        for layout in [ActivationLayout.nhwc, .nchw] {
            let prefix = PreparedFilter.panelKey("", layout: layout)
            for (key, entry) in entries where key.hasPrefix(prefix) {
                let constant = String(key.dropFirst(prefix.count))
                guard let panels = entry as? PanelConv2DWeights, entries[packedPrefix + constant] == nil,
                      rowMajor[constant] == nil else { continue }
                rowMajor[constant] = try panels.rowMajor()
            }
        }
        let unpacked = rowMajor.map { PreparedFilter(constant: $0.key, weights: .packed($0.value)) }
        return (entries.keys.sorted().compactMap { key -> PreparedFilter? in
            switch entries[key] {
            case let winograd as WinogradWeights where key.hasPrefix(winogradPrefix):
                return PreparedFilter(constant: String(key.dropFirst(winogradPrefix.count)), weights: .winograd(winograd))
            case let packed as PackedConv2DWeights where key.hasPrefix(packedPrefix):
                return PreparedFilter(constant: String(key.dropFirst(packedPrefix.count)), weights: .packed(packed))
            case let bf16 as BF16Weights where key.hasPrefix(bf16Prefix):
                return PreparedFilter(constant: String(key.dropFirst(bf16Prefix.count)), weights: .bf16(bf16))
            default:
                return nil
            }
        } + unpacked).sorted { $0.key < $1.key }
    }
}
