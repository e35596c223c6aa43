import ArgumentParser
import Foundation
import Keel

/// How a model becomes runnable; shared by run, extract, bench and compile so they agree.
struct CompileOptions: ParsableArguments {
    @Option(name: [.customShort("O", allowingJoined: true)], help: ArgumentHelp("Optimisation level: -O0, -O1 or -O2.", valueName: "level"))
    var level: String = "2"

    @Option(name: .long, help: ArgumentHelp("Run exactly these passes, comma-separated, instead of the level's pipeline.", valueName: "a,b,c"))
    var passes: String?

    @Option(name: .long, help: "Threads for GEMM and Keel's own parallel loops.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Fill parameters without weights from Keras's default initialisers with this seed.")
    var seed: UInt64 = 0

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard OptimizationLevel(parsing: level) != nil else { throw ValidationError("-O takes 0, 1 or 2, not '\(level)'") }
    }

    func pipeline(_ path: String, cutAt: String? = nil) -> ModelPipeline {
        ModelPipeline(path: path, weights: .seeded(seed), threads: threads, cutAt: cutAt,
                      optimization: OptimizationLevel(parsing: level) ?? .O2,
                      passes: passes.map { $0.split(separator: ",").map(String.init) })
    }
}
