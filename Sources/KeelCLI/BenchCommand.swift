import ArgumentParser
import Foundation
import Keel

extension BatchSchedule: ExpressibleByArgument {}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model: load, compile, and the median of repeated runs; optionally per layer.")

    @Argument(help: modelFileHelp)
    var file: String

    @Option(name: .long, help: ArgumentHelp("The input tensor (.npy); name=x.npy for a model with several inputs.", valueName: "file"))
    var input: [String] = []

    @Option(name: .long, help: "Timed runs.")
    var iterations: Int = 10

    @Option(name: .long, help: "Untimed runs first.")
    var warmup: Int = 2

    @OptionGroup var options: CompileOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Also time every layer (its median over --iterations more runs) and print its share, GFLOP/s, GB/s and the precision, algorithm and kernel it runs.")
    var profile = false

    @Option(name: .long, help: ArgumentHelp("Also time this many threads calling run at once on the one compiled model (--iterations runs each, --threads-per-run threads per run), against the same runs one after another.", valueName: "n"))
    var callers: Int?

    @Option(name: .long, help: ArgumentHelp("With --callers: threads each run uses (default: --threads).", valueName: "n"))
    var threadsPerRun: Int?

    @Option(name: .long, help: ArgumentHelp("Also run the model at this precision on the same inputs and print, per output, max abs / max rel difference, cosine similarity and top-1 agreement.", valueName: "fp32|fp32-strict|bf16"))
    var compare: Precision?

    @Option(name: .long, help: ArgumentHelp("With a batch of several images: run large layers image by image where that keeps their activations in cache (automatic, the default), every layer on the whole batch, or every layer that can image by image. Results do not depend on it.", valueName: "automatic|whole-batch|image-by-image"))
    var batchSchedule: BatchSchedule = .automatic

    func validate() throws {
        guard iterations >= 1, warmup >= 0 else {
            throw ValidationError("--iterations must be at least 1, --warmup at least 0")
        }
        guard !input.isEmpty else { throw ValidationError("give an --input file") }
        if let callers, !(1...256).contains(callers) { throw ValidationError("--callers must be from 1 to 256") }
        if threadsPerRun != nil && callers == nil { throw ValidationError("--threads-per-run needs --callers") }
        if let threadsPerRun, !(1...ExecutionContext.maximumThreads).contains(threadsPerRun) {
            throw ValidationError("--threads-per-run must be from 1 to \(ExecutionContext.maximumThreads)")
        }
    }

    func run() throws {
        try reportingErrors {
            try options.explainWeightsIfAsked(file, toStandardError: json)
            var pipeline = try options.pipeline(file)
            pipeline.batchSchedule = batchSchedule
            pipeline.preparedBatch = batchOfInputs(input) ?? 1
            pipeline.inputShapes = options.paths.inputShapes(runningOn: input)
            let (model, report) = try pipeline.compile()
            noteSeeded(report)
            let inputs = try readInputs(input, for: model)
            let bindings = try model.bind(inputs)
            let prepareStart = DispatchTime.now().uptimeNanoseconds
            try model.prepare(bindings: bindings)
            let compileSeconds = report.compileSeconds + Double(DispatchTime.now().uptimeNanoseconds - prepareStart) / 1e9
            for _ in 0..<warmup { _ = try model.run(inputs) }
            var times: [Double] = []
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try model.run(inputs)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            let profiles = profile ? try model.profile(inputs, runs: iterations) : []
            let concurrency = try callers.map {
                try ConcurrentBench(callers: $0, runsPerCaller: iterations, threadsPerRun: threadsPerRun).measure(model, inputs: inputs)
            }
            var agreements: [OutputAgreement] = []
            if let compare {
                var other = try options.pipeline(file)
                other.precision = compare
                other.batchSchedule = batchSchedule
                other.preparedBatch = pipeline.preparedBatch
                other.inputShapes = pipeline.inputShapes
                let reference = try other.compile().model
                agreements = OutputAgreement.compare(try model.run(inputs), reference: try reference.run(inputs))
            }
            let result = BenchResult(model: file, batch: bindings.values.first ?? 1, threads: options.threads,
                                     median_ms: median, min_ms: times.first ?? 0, load_ms: report.loadSeconds * 1000,
                                     compile_ms: compileSeconds * 1000, peak_rss_mb: peakResidentMegabytes(),
                                     simd: ExecutionContext.simdLevel,
                                     precision: model.context.precision.rawValue,
                                     layers: profiles.map { .init(node: $0.node, op: $0.op, ms: $0.seconds * 1000, gflops_per_s: $0.gflopsPerSecond,
                                                                  gb_per_s: $0.gigabytesPerSecond, kernel: $0.kernelDescription) },
                                     compared: agreements.map(BenchResult.Agreement.init), concurrent: concurrency)
            if json {
                print(try jsonText(result))
            } else {
                print(String(format: "%@: median %.2f ms, min %.2f ms over %d runs (batch %d, %d threads, %@); load %.1f ms, compile %.1f ms; peak RSS %.1f MB",
                             file, median, result.min_ms, iterations, result.batch, options.threads, result.simd,
                             result.load_ms, result.compile_ms, result.peak_rss_mb))
                if profile { printProfile(profiles) }
                if let concurrency {
                    print(String(format: "%d callers at once, %d runs each on %d threads: %.1f ms, against %.1f ms one after another (%.2f× the throughput)",
                                 concurrency.callers, concurrency.runs_per_caller, concurrency.threads_per_run,
                                 concurrency.concurrent_ms, concurrency.serial_ms, concurrency.speedup))
                }
                if let compare {
                    print("\(model.context.precision.rawValue) against \(compare.rawValue) on the same inputs:")
                    for agreement in agreements { print("  " + agreement.summary) }
                }
            }
        }
    }

    private func printProfile(_ profiles: [StepProfile]) {
        let total = profiles.reduce(0) { $0 + $1.seconds }
        // Columns as wide as the longest name, so exporter-length names never run into the op.
        let nodeWidth = profiles.map(\.node.count).max().map { max($0, 5) + 2 } ?? 7
        let opWidth = profiles.map(\.op.count).max().map { max($0, 2) + 2 } ?? 4
        func padded(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        print(padded("layer", nodeWidth) + padded("op", opWidth) + "      ms    share   GFLOP/s    GB/s  kernel")
        for step in profiles {
            print(padded(step.node, nodeWidth) + padded(step.op, opWidth)
                  + String(format: "%8.2f %7.1f%% %9.1f %7.1f  ", step.seconds * 1000, 100 * step.seconds / max(total, 1e-12),
                           step.gflopsPerSecond, step.gigabytesPerSecond)
                  + step.kernelDescription)
        }
    }
}

struct BenchResult: Encodable {
    struct Layer: Encodable {
        var node: String
        var op: String
        var ms: Double
        var gflops_per_s: Double
        var gb_per_s: Double
        /// Precision, algorithm and kernel, e.g. "bf16 im2col AMX-BF16".
        var kernel: String
    }
    struct Agreement: Encodable {
        var output: String
        var max_abs: Double
        var max_rel: Double
        var min_cosine: Double
        var top1_agree: Int
        var samples: Int
        init(_ agreement: OutputAgreement) {
            output = agreement.output
            max_abs = agreement.maxAbsoluteDifference
            max_rel = agreement.maxRelativeDifference
            min_cosine = agreement.minimumCosine
            top1_agree = agreement.top1Agreements
            samples = agreement.samples
        }
    }
    var model: String
    var batch: Int
    var threads: Int
    var median_ms: Double
    var min_ms: Double
    var load_ms: Double
    var compile_ms: Double
    var peak_rss_mb: Double
    /// The CPU capabilities Keel's C kernels use ("AVX2+AVX-512+AVX512_BF16+AMX-BF16", …, "generic").
    var simd: String
    /// The precision conv2d and dense ran at ("fp32", "bf16").
    var precision: String
    var layers: [Layer]
    /// With --compare: this run's outputs against the other precision's.
    var compared: [Agreement]
    /// With --callers: concurrent runs against serial ones.
    var concurrent: ConcurrentBench.Result?
}

/// Peak resident set size of this process so far (Linux reports ru_maxrss in kilobytes).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576
    #endif
}
