import ArgumentParser
import Foundation
import Keel

/// Standard output carries results only; notes, warnings and progress go to standard error,
/// and `--quiet` leaves errors and warnings there alone.
enum Notes {
    nonisolated(unsafe) static var quiet = false
    nonisolated(unsafe) private static var warned: Set<String> = []

    static func note(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data(("note: " + text + "\n").utf8))
    }

    /// Each distinct warning once per process, even when several code paths notice it.
    static func warning(_ text: String) {
        guard warned.insert(text).inserted else { return }
        FileHandle.standardError.write(Data(("warning: " + text + "\n").utf8))
    }
}

func note(_ text: String) { Notes.note(text) }

/// A note about a place in the model: "file:line:col: note: …" as compilers print them.
func note(_ text: String, at location: SourceLocation?) {
    guard !Notes.quiet else { return }
    FileHandle.standardError.write(Data(((location.map { "\($0): " } ?? "") + "note: " + text + "\n").utf8))
}

/// `--quiet`, shared by every command.
struct QuietOption: ParsableArguments {
    @Flag(name: [.short, .long], help: "Print no notes or progress on stderr (errors and warnings still are).")
    var quiet = false

    // Validation runs once, right after parsing and before any command prints: the one place to set it.
    func validate() throws {
        Notes.quiet = quiet
    }
}
