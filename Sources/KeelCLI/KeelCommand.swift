import ArgumentParser
import Foundation
import Keel

@main
struct KeelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keel",
        abstract: "Compile, check and run model graphs on the CPU.",
        subcommands: [CheckCommand.self, SummaryCommand.self, CompileCommand.self, RunCommand.self, ExtractCommand.self,
                      BenchCommand.self, MergeCommand.self])
}

/// Prints a user-facing error the way compilers do (the message, then its notes) and exits 1.
/// Every command funnels its work through here so no error escapes as a trap or a Swift dump.
func reportingErrors(_ body: () throws -> Void) throws {
    TemporaryFiles.removeOnInterrupt()
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data((errorText(error) + "\n").utf8))
        throw ExitCode.failure
    }
}

func errorText(_ error: Error) -> String {
    if let diagnostic = error as? Diagnostic { return diagnostic.description }
    let text = String(describing: error)
    return text.hasPrefix("error:") || text.contains(": error:") ? text : "error: " + text
}

func note(_ text: String) {
    FileHandle.standardError.write(Data(("note: " + text + "\n").utf8))
}
