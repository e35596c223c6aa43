import ArgumentParser
import Keel

/// How a model file is read, shared by every command that loads one: the folders its own file
/// references (includes, external data, labels) may reach besides its folder tree, and sizes for
/// input dimensions it leaves symbolic.
struct ModelPathOptions: ParsableArguments {
    @Option(name: .customLong("allow-path"),
            help: ArgumentHelp("Let files the model names be read from this folder too (repeatable); by default only the model's folder tree is.", valueName: "dir"))
    var allowedFolders: [String] = []

    @Option(name: .customLong("input-shape"),
            help: ArgumentHelp("Sizes for an input's symbolic dimensions (an ONNX model exported with a free height and width): 1x3x320x256, or name=?x320x256x3 for one of several inputs; ? keeps the model's dimension (the batch stays free). run, bench and extract take them from their .npy inputs when not given.", valueName: "shape"))
    var inputShapeArguments: [String] = []

    var confinement: PathConfinement { PathConfinement(allowing: allowedFolders) }

    /// The shapes given with --input-shape (checked by `validate`).
    var inputShapes: InputShapes { (try? InputShapes.parsing(inputShapeArguments)) ?? InputShapes() }

    func validate() throws {
        do {
            _ = try InputShapes.parsing(inputShapeArguments)
        } catch let problem as InputShapeError {
            throw ValidationError(problem.description)
        }
    }

    /// The shapes given with --input-shape or, without them, those of the .npy files a run is given.
    func inputShapes(runningOn inputFiles: [String]) -> InputShapes {
        guard inputShapeArguments.isEmpty else { return inputShapes }
        return InputShapes.ofRunInputs(inputFiles.compactMap { argument in
            let (name, path) = inputArgument(argument)
            return (try? NpyFile.readHeader(path: path)).map { (name, $0.shape) }
        })
    }
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
