import ArgumentParser
import Keel

/// Folders a model's own file references (includes, external data, labels) may reach besides
/// the model's folder tree; shared by every command that loads a model.
struct ModelPathOptions: ParsableArguments {
    @Option(name: .customLong("allow-path"),
            help: ArgumentHelp("Let files the model names be read from this folder too (repeatable); by default only the model's folder tree is.", valueName: "dir"))
    var allowedFolders: [String] = []

    var confinement: PathConfinement { PathConfinement(allowing: allowedFolders) }
}

/// `--max-memory 16G`: bytes with an optional k/M/G/T (powers of 1,000) or Ki/Mi/Gi/Ti suffix.
extension MemoryBudget: ExpressibleByArgument {
    public init?(argument: String) {
        let units: [(String, Int)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40),
                                      ("k", 1_000), ("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000)]
        var text = Substring(argument.hasSuffix("B") ? String(argument.dropLast()) : argument)
        var scale = 1
        if let (suffix, factor) = units.first(where: { text.hasSuffix($0.0) }) {
            text = text.dropLast(suffix.count)
            scale = factor
        }
        guard let value = Double(text), value > 0, value * Double(scale) < 9e18 else { return nil }
        self.init(bytes: Int(value * Double(scale)))
    }
}
