import Foundation
import Synchronization

/// Temporary files of outputs not yet in place, removed when the process is interrupted
/// (SIGINT, SIGTERM, SIGHUP), so a cancelled command leaves nothing behind; it then exits with
/// 128 + the signal's number (130 for Ctrl-C). A group of renames (`OutputTransaction.commit`)
/// is never split: a signal that arrives during one is acted on when it ends.
///
/// The handler runs in signal context, so it touches only a fixed table of C strings made
/// outside it, `unlink`, `write` and `_exit`.
public enum TemporaryFiles {
    static let capacity = 256
    /// Registered paths (strdup'd); a freed slot is nil. Written under `lock`, read by the handler.
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        return slots
    }()
    private static let lock = NSLock()
    /// 0 idle, 1 committing, 2 the handler is removing files (the process is ending).
    private static let state = Atomic<Int>(0)
    /// A signal that arrived while committing, acted on when the commit ends.
    private static let pendingSignal = Atomic<Int32>(0)
    private static let installed = Atomic<Bool>(false)

    public static func register(_ path: String) throws {
        try lock.withLock {
            guard let free = (0..<capacity).first(where: { slots[$0] == nil }) else {
                throw RuntimeError.file(path: path, reason: "cannot write: more than \(capacity) outputs at once")
            }
            slots[free] = strdup(path)
        }
    }

    public static func unregister(_ path: String) {
        lock.withLock {
            for index in 0..<capacity {
                guard let entry = slots[index], String(cString: entry) == path else { continue }
                slots[index] = nil
                free(entry)
            }
        }
    }

    /// Installs the handlers (once). Programs that embed Keel and handle signals themselves
    /// simply don't call it.
    public static func removeOnInterrupt() {
        guard installed.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else { return }
        _ = slots
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber) { TemporaryFiles.interrupted(by: $0) }
        }
    }

    /// Runs `body` (a group of renames) so that a signal lands before or after it, never inside.
    static func committing<T>(_ body: () throws -> T) rethrows -> T {
        while !state.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
            // Another commit is running, or the handler is removing files and ending the process.
            usleep(1000)
        }
        defer {
            state.store(0, ordering: .sequentiallyConsistent)
            let pending = pendingSignal.load(ordering: .sequentiallyConsistent)
            if pending != 0 { interrupted(by: pending) }
        }
        return try body()
    }

    private static func interrupted(by signalNumber: Int32) {
        guard state.compareExchange(expected: 0, desired: 2, ordering: .sequentiallyConsistent).exchanged else {
            pendingSignal.store(signalNumber, ordering: .sequentiallyConsistent)
            return
        }
        for index in 0..<capacity {
            if let entry = slots[index] { unlink(entry) }
        }
        let message: StaticString = "keel: interrupted; unfinished outputs removed\n"
        _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
        _exit(128 + signalNumber)
    }
}
