import ArgumentParser
import Foundation
import Keel

extension WeightMatch: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// How a model becomes runnable; shared by run, extract, bench and compile so they agree.
struct CompileOptions: ParsableArguments {
    @OptionGroup var paths: ModelPathOptions

    @Option(name: [.customShort("O", allowingJoined: true)], help: ArgumentHelp("Optimisation level: -O0, -O1 or -O2.", valueName: "level"))
    var level: String?

    @Option(name: .long, help: ArgumentHelp("Run exactly these passes, comma-separated, instead of the level's pipeline.", valueName: "a,b,c"))
    var passes: String?

    @Option(name: .long, help: "Threads for GEMM and Keel's own parallel loops.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("max-memory"), help: ArgumentHelp("Refuse models whose weights or activations need more than this (e.g. 8G); default: the memory available.", valueName: "bytes"))
    var maximumMemory: MemoryBudget?

    @Flag(name: .customLong("verify"), help: "For a .keelc model: check every weight byte against the checksum stored when it was compiled, before running.")
    var verifiesArtifact = false

    @Option(name: .long, help: "Fill parameters without weights from Keras's default initialisers with this seed (default 0).")
    var seed: UInt64?

    @Option(name: .long, help: ArgumentHelp("Bind the graph's parameters to this ONNX model's initializers.", valueName: "file"))
    var weights: String?

    @Option(name: .long, help: "Match parameters to initializers by Keras layer name (tf2onnx; the default) or by layer order (PyTorch exports).")
    var match: WeightMatch?

    @Option(name: .long, help: ArgumentHelp("Precision of conv2d and dense products: fp32 (the default), fp32-strict (fp32 without Winograd: each convolution rounds as a direct one, for models that amplify rounding; up to 2x slower 3x3 layers) or bf16 (AMX or AVX512_BF16; fp32 accumulation; bf16 between bf16 layers, fp32 elsewhere; without AMX, layers fp32 Winograd runs faster keep fp32).", valueName: "fp32|fp32-strict|bf16"))
    var precision: Precision?

    @OptionGroup var terminal: QuietOption

    @Flag(help: "Explain the compile: which initializer each parameter is bound to and how it is converted (with --weights); for `compile`, also every rewrite a pass rejected and why.")
    var explain = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard threads <= ExecutionContext.maximumThreads else {
            throw ValidationError("--threads must be at most \(ExecutionContext.maximumThreads)")
        }
        if let level, OptimizationLevel(parsing: level) == nil { throw ValidationError("-O takes 0, 1 or 2, not '\(level)'") }
        if weights == nil && match != nil { throw ValidationError("--match needs --weights") }
    }

    var weightSource: WeightSource {
        weights.map { .onnx(path: $0, match: match ?? .name) } ?? .seeded(seed ?? 0)
    }

    /// Prints the binding of `model`'s parameters, one line each, when --explain and --weights are given;
    /// to standard error when standard output carries something else (bench's JSON).
    func explainWeightsIfAsked(_ model: String, toStandardError: Bool = false) throws {
        guard explain, let weights else { return }
        let plan = try WeightBindingPlan.make(for: try ModelLoader.load(path: model, confinement: paths.confinement,
                                                                       inputShapes: paths.inputShapes), onnxPath: weights, match: match ?? .name)
        for line in plan.explanation {
            if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
        }
    }

    /// Every option that changes what the model computes, for `extract --resume` to compare.
    var fingerprint: String {
        [level ?? "2", passes ?? "", weights ?? "", match?.rawValue ?? "", String(seed ?? 0), precision?.rawValue ?? "",
         paths.inputShapeArguments.joined(separator: " ")]
            .joined(separator: "\u{1}")
    }

    /// The pipeline for `path`; a compiled .keelc refuses the flags that would have made a
    /// different file, rather than running as if they had been honoured. bf16 asked for on a CPU
    /// without bf16 kernels says so in one line and runs fp32.
    func pipeline(_ path: String, cutAt: String? = nil) throws -> ModelPipeline {
        if let note = precision?.fallbackNote { Notes.warning(note) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if threads > cores {
            Notes.warning("--threads \(threads) is more than the \(cores) cores this machine has; extra threads only contend for them and slow the run down")
        }
        if CompiledArtifact.isArtifact(path: path) {
            let compiledPrecision = (try? CompiledArtifact.read(path: path)).flatMap { Precision(rawValue: $0.provenance.precision) }
            let otherPrecision = precision != nil && compiledPrecision != nil && precision != compiledPrecision
            let given = [(weights != nil, "--weights"), (match != nil, "--match"), (seed != nil, "--seed"),
                         (level != nil, "-O"), (passes != nil, "--passes"), (otherPrecision, "--precision")]
                .filter(\.0).map(\.1)
            if !given.isEmpty {
                let source = (try? CompiledArtifact.read(path: path).provenance.source)
                throw ValidationError("\(path) is compiled\(source.map { " from \($0)" } ?? ""): \(given.joined(separator: ", ")) would change how it is made; "
                                      + "compile \(source ?? "its source") again with \(given.count == 1 ? "it" : "them") (keel compile \(source ?? "SOURCE") … -o \(path))")
            }
        }
        var pipeline = ModelPipeline(path: path, weights: weightSource, threads: threads, cutAt: cutAt,
                                     optimization: level.flatMap(OptimizationLevel.init(parsing:)) ?? .O2,
                                     passes: passes.map { $0.split(separator: ",").map(String.init) }, precision: precision)
        pipeline.confinement = paths.confinement
        pipeline.inputShapes = paths.inputShapes
        if let maximumMemory { pipeline.memoryBudget = maximumMemory }
        pipeline.verifiesArtifact = verifiesArtifact
        return pipeline
    }
}
