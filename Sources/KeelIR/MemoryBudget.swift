#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many bytes a model may allocate for weights and activations: the memory the system has
/// available, or a cap the user sets (`--max-memory`). Sizes are checked against it before
/// allocating, so an absurd shape is a one-line error naming what needed the memory rather than
/// an allocation abort, or a machine driven into swap.
public struct MemoryBudget: Hashable, Sendable {
    public var bytes: Int
    /// True when the user chose the figure (messages then name the option, not the system).
    public var isExplicit: Bool

    public init(bytes: Int) {
        self.bytes = bytes
        self.isExplicit = true
    }

    private init(available bytes: Int) {
        self.bytes = bytes
        self.isExplicit = false
    }

    /// What the system reports as available now (MemAvailable, else physical memory).
    public static var available: MemoryBudget { MemoryBudget(available: availableBytes()) }

    /// Throws unless `bytes` (nil: too large to count) fits; `what` names who needs them
    /// ("conv2d 'c' (its output [1,100000,100000,64])").
    public func check(_ bytes: Int?, for what: String) throws(MemoryBudgetError) {
        guard let bytes, bytes <= self.bytes else {
            throw MemoryBudgetError(needed: bytes, budget: self, what: what)
        }
    }

    /// Bytes of `count` elements of `elementSize`, nil when not representable.
    public static func bytes(_ count: Int, elementSize: Int) -> Int? {
        let (product, overflow) = count.multipliedReportingOverflow(by: elementSize)
        return overflow ? nil : product
    }

    private static func availableBytes() -> Int {
        #if os(Linux)
        if let file = fopen("/proc/meminfo", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 256)
            while fgets(&line, Int32(line.count), file) != nil {
                let text = String(cString: line)
                guard text.hasPrefix("MemAvailable:") else { continue }
                let digits = text.dropFirst("MemAvailable:".count).filter(\.isNumber)
                if let kilobytes = Int(digits) { return kilobytes * 1024 }
            }
        }
        #endif
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && pageSize > 0 ? pages * pageSize : Int.max
    }

    /// "23.4 GB": sizes in messages, decimal units as `free -h --si` prints them.
    public static func describe(_ bytes: Int) -> String {
        let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(bytes) bytes" : "\((value * 10).rounded() / 10) \(units[unit])"
    }
}

/// A size that does not fit the memory budget.
public struct MemoryBudgetError: Error, Hashable, Sendable, CustomStringConvertible {
    public var needed: Int?
    public var budget: MemoryBudget
    public var what: String

    public var description: String {
        let amount = needed.map(MemoryBudget.describe) ?? "more bytes than can be counted"
        let limit = budget.isExplicit ? "the \(MemoryBudget.describe(budget.bytes)) --max-memory allows"
                                      : "the \(MemoryBudget.describe(budget.bytes)) of memory available (raise with --max-memory)"
        return "\(what) needs \(amount), more than \(limit)"
    }
}
