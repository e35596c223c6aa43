import ArgumentParser
import Foundation
import Keel

@main
struct KeelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keel",
        abstract: "Compile, check and run model graphs on the CPU.",
        discussion: """
        Exit status: 0 on success, 1 for a bad input (model, weights, image, tensor, output path), \
        64 for a usage error (unknown command or option, missing or conflicting arguments), \
        130 when interrupted.
        """,
        version: "keel \(KeelVersion.current)",
        subcommands: [CheckCommand.self, SummaryCommand.self, CompileCommand.self, RunCommand.self, ExtractCommand.self,
                      BenchCommand.self, MergeCommand.self])

    /// Parses, runs, and maps every failure to one `error:` line and the documented exit status.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            try UsageCheck(root: KeelCommand.self).check(arguments)
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch let error as UsageCheck.Misspelling {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            let status = exitCode(for: error)
            guard status != .success else { exit(withError: error) }   // --help, --version
            FileHandle.standardError.write(Data((usageErrorText(fullMessage(for: error)) + "\n").utf8))
            Foundation.exit(status.rawValue)
        }
    }
}

/// The argument parser's "Error: Unknown option" in the form every other error has: "error: unknown option".
func usageErrorText(_ message: String) -> String {
    guard message.hasPrefix("Error: ") else { return message }
    var text = message.dropFirst("Error: ".count)
    if let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase ?? false {
        text = first.lowercased() + text.dropFirst()
    }
    return "error: " + text
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
    // Names inside other errors came from files and may hold control characters; their own line
    // breaks (a list of unbound parameters) stay.
    let text = String(describing: error).split(separator: "\n", omittingEmptySubsequences: false)
        .map { String($0).escapedForTerminal }.joined(separator: "\n")
    return text.hasPrefix("error:") || text.contains(": error:") ? text : "error: " + text
}

/// What every command's model argument may be.
let modelFileHelp = ArgumentHelp("A .keel graph, an .onnx model or a compiled .keelc.", valueName: "file")
