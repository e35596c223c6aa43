import ArgumentParser
import Foundation
import Keel

/// Finds misspelt subcommands and options before parsing, so `keel chek` says "did you mean
/// 'check'?" instead of "2 unexpected arguments". The names come from the parser's own
/// description of the commands, so they never drift from what it accepts.
struct UsageCheck {
    let root: ParsableCommand.Type

    /// A misspelt command or option, with the command whose help lists the right ones.
    struct Misspelling: Error, CustomStringConvertible {
        var message: String
        var command: [String]
        var description: String {
            "error: \(message)\n  See '\(command.joined(separator: " ")) --help' for more information."
        }
    }

    private struct Description: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        struct Argument: Decodable {
            var kind: String
            var names: [Name]?
        }
        struct Command: Decodable {
            var commandName: String
            var arguments: [Argument]?
            var subcommands: [Command]?
        }
        var command: Command
    }

    func check(_ arguments: [String]) throws {
        guard let description = try? JSONDecoder().decode(Description.self, from: Data(root._dumpHelp().utf8)) else { return }
        var command = description.command
        var path = [command.commandName]
        var index = 0
        // Subcommands come first: `keel run …`.
        while index < arguments.count, let subcommands = command.subcommands, !subcommands.isEmpty {
            let word = arguments[index]
            if word.hasPrefix("-") { break }
            guard let next = subcommands.first(where: { $0.commandName == word }) else {
                let names = subcommands.map(\.commandName)
                throw Misspelling(message: "unknown command '\(word)'" + (suggestion(for: word, among: names).nonEmpty
                    ?? " (commands: \(names.joined(separator: ", ")))"), command: path)
            }
            command = next
            path.append(next.commandName)
            index += 1
        }
        let long = (command.arguments ?? []).flatMap { $0.names ?? [] }.filter { $0.kind == "long" }.map { "--" + $0.name }
        let builtIn = ["--help", "--version", "--generate-completion-script", "--experimental-dump-help"]
        for argument in arguments[index...] {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let name = String(argument.prefix { $0 != "=" })
            guard !long.contains(name), !builtIn.contains(name) else { continue }
            throw Misspelling(message: "unknown option '\(name)'" + suggestion(for: name, among: long), command: path)
        }
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
