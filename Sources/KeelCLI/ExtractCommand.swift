import ArgumentParser
import Foundation
import Keel

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Run images through a model up to a layer and save the features as one .npy.",
        discussion: """
        Writes OUTPUT as float32 [count, …] and OUTPUT's stem + .files.txt listing the images in row order
        (one path per line; a path holding a newline or another control character is written as a JSON
        string, "a\\nb.jpg"). Folders are searched recursively for .jpg, .jpeg and .png files, in sorted order.
        Shards are numbered from 0 (like Slurm array ids and Kubernetes completion indexes); a shard also
        writes OUTPUT's stem + .shard.json, which `keel merge` checks.
        """)

    @Argument(help: modelFileHelp)
    var model: String

    @Argument(help: "Image files or folders.")
    var inputs: [String]

    @Option(name: .long, help: "The layer whose output is the feature (e.g. block5_pool).")
    var at: String

    @Option(name: .long, help: ArgumentHelp("The .npy file to write.", valueName: "file"))
    var output: String

    @Option(name: .long, help: "Images per run.")
    var batch: Int = 16

    @Option(name: .long, help: ArgumentHelp("Process only shard i of n, numbered from 0 (0/4 … 3/4): a contiguous slice of the sorted file list; or auto, from SLURM_ARRAY_TASK_ID/_MIN/_COUNT or JOB_COMPLETION_INDEX.", valueName: "i/n|auto"))
    var shard: String?

    @Option(name: .long, help: ArgumentHelp("The number of shards for --shard auto in a Kubernetes Indexed Job (its completions; or set KEEL_SHARD_COUNT).", valueName: "n"))
    var shardCount: Int?

    @Flag(name: .long, help: "Continue a run that was killed (SIGKILL, out of memory, a lost node) from its last complete batch, if its partial files are there.")
    var resume = false

    @Flag(name: .long, help: "Skip unreadable images (reported on stderr) instead of stopping; exit status is still 1.")
    var keepGoing = false

    @Option(name: .long, help: ArgumentHelp("Image preprocessing instead of the one the input declares: \(ImagePreset.names.joined(separator: ", ")).", valueName: "preset"))
    var preprocess: String?

    @OptionGroup var options: CompileOptions

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let shard, shard != "auto" {
            do { _ = try Shard.parse(shard, count: shardCount, environment: [:]) } catch { throw ValidationError(String(describing: error)) }
        }
        if shardCount != nil && shard != "auto" { throw ValidationError("--shard-count goes with --shard auto") }
    }

    func run() throws {
        var failures = 0
        try reportingErrors {
            let all = try ImageFiles.list(inputs)
            var files = all
            var shardRecord: ShardRecord?
            if let shard {
                let parsed = try Shard.parse(shard, count: shardCount, environment: ProcessInfo.processInfo.environment)
                let range = parsed.range(of: all.count)
                files = Array(all[range])
                shardRecord = ShardRecord(shard: parsed, files: all)
                note("shard \(parsed) (numbered from 0): files \(range.lowerBound)..<\(range.upperBound) of \(all.count)")
            }
            var pipeline = try options.pipeline(model, cutAt: at)
            pipeline.preparedBatch = max(1, min(batch, files.count))
            let (compiled, report) = try pipeline.compile()
            noteSeeded(report)
            let feeder = try ImageFeeder(graph: compiled.graph, preset: preprocess)
            guard let outputName = compiled.outputNames.first,
                  let outputType = compiled.graph.outputs.first.flatMap({ compiled.graph.type(of: $0.value) }) else {
                throw ValidationError("layer '\(at)' has no output")
            }
            let rowShape = outputType.shape.dims.dropFirst().compactMap(\.value)
            let features = try FeatureOutput(path: output, rowShape: rowShape, fingerprint: fingerprint(files: files),
                                             resume: resume, shardRecord: shardRecord)
            if features.resumed {
                note("resuming: \(features.filesDone) of \(files.count) files were done (\(features.rows) rows)")
            } else if features.restarted {
                note("starting over: a killed run of \(output) left partial files (--resume continues such a run)")
            } else if resume {
                note("nothing to resume for \(output): starting from the first file")
            }
            failures = features.failures
            let progress = Progress(total: files.count)
            do {
                try compiled.prepare(bindings: feeder.bindings(count: pipeline.preparedBatch))
                for start in stride(from: features.filesDone, to: files.count, by: batch) {
                    let end = min(start + batch, files.count)
                    var images: [[Float]] = []
                    var names: [String] = []
                    for file in files[start..<end] {
                        do {
                            images.append(try feeder.values(forFile: file))
                            names.append(file)
                        } catch where keepGoing {
                            failures += 1
                            progress.interrupt(errorText(error))
                        }
                    }
                    var values: ArraySlice<Float> = []
                    if !images.isEmpty {
                        let result = try compiled.run([feeder.inputName: try feeder.tensor(rows: images)])
                        guard let tensor = result[outputName] else { throw ValidationError("layer '\(at)' has no output") }
                        values = tensor.values[...]
                    }
                    try features.append(values, names: names, filesDone: end, failures: failures)
                    progress.update(done: end)
                }
                guard features.rows > 0 || files.isEmpty else { throw ValidationError("no image could be read") }
                let sidecar = try features.commit()
                progress.finish()
                print("\(outputName): \(Shape(known: [features.rows] + rowShape)) -> \(output)"
                      + (sidecar.map { " (file order in \($0))" } ?? " (no file list: the output is a device or FIFO)"))
            } catch {
                features.cancel()
                throw error
            }
        }
        if failures > 0 {
            FileHandle.standardError.write(Data("error: \(failures) image(s) could not be read; their rows are left out\n".utf8))
            throw ExitCode.failure
        }
    }

    /// What must match for `--resume` to continue a partial run: every option that changes the
    /// rows, and the files of this shard.
    private func fingerprint(files: [String]) -> String {
        let parts = [model, at, preprocess ?? "", String(batch), String(keepGoing), options.fingerprint] + files
        return String(stableHash(Array(parts.joined(separator: "\0").utf8)), radix: 16)
    }
}

/// Progress on stderr: a redrawn line with count, images/s and ETA on a terminal; a plain line
/// every few seconds otherwise (logs of batch jobs).
final class Progress {
    private let total: Int
    private let start = Date()
    private var lastPrinted = Date.distantPast
    private let interactive = isatty(STDERR_FILENO) != 0

    init(total: Int) { self.total = total }

    func update(done: Int) {
        let now = Date()
        guard !Notes.quiet else { return }
        guard interactive || now.timeIntervalSince(lastPrinted) >= 5 || done == total else { return }
        lastPrinted = now
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let line = String(format: "%d/%d images, %.1f images/s, ETA %.0f s", done, total, rate, remaining)
        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    func interrupt(_ message: String) {
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + message + "\n").utf8))
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
