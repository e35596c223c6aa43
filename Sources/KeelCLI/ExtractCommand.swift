import ArgumentParser
import Foundation
import Keel

struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Run images through a model up to a layer and save the features as one .npy.",
        discussion: """
        Writes OUTPUT as float32 [count, …] and OUTPUT's stem + .files.txt listing the images in row order.
        Folders are searched recursively for .jpg, .jpeg and .png files, in sorted order.
        """)

    @Argument(help: "A .keel graph or an .onnx model.")
    var model: String

    @Argument(help: "Image files or folders.")
    var inputs: [String]

    @Option(name: .long, help: "The layer whose output is the feature (e.g. block5_pool).")
    var at: String

    @Option(name: .long, help: ArgumentHelp("The .npy file to write.", valueName: "file"))
    var output: String

    @Option(name: .long, help: "Images per run.")
    var batch: Int = 16

    @Option(name: .long, help: ArgumentHelp("Process only shard i of n (0-based), a contiguous slice of the sorted file list.", valueName: "i/n"))
    var shard: String?

    @Flag(name: .long, help: "Skip unreadable images (reported on stderr) instead of stopping; exit status is still 1.")
    var keepGoing = false

    @Option(name: .long, help: ArgumentHelp("Image preprocessing instead of the one the input declares: \(ImagePreset.names.joined(separator: ", ")).", valueName: "preset"))
    var preprocess: String?

    @OptionGroup var options: CompileOptions

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        _ = try parsedShard()
    }

    private func parsedShard() throws -> (index: Int, count: Int)? {
        guard let shard else { return nil }
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] >= 1, (0..<parts[1]).contains(parts[0]) else {
            throw ValidationError("--shard takes i/n with 0 <= i < n, e.g. 0/4; got '\(shard)'")
        }
        return (parts[0], parts[1])
    }

    func run() throws {
        var failures = 0
        try reportingErrors {
            var files = try ImageFiles.list(inputs)
            if let (index, count) = try parsedShard() { files = ImageFiles.shard(files, index: index, count: count) }
            let (compiled, report) = try options.pipeline(model, cutAt: at).compile()
            noteSeeded(report, seed: options.seed)
            let feeder = try ImageFeeder(graph: compiled.graph, preset: preprocess)
            guard let outputName = compiled.outputNames.first,
                  let outputType = compiled.graph.outputs.first.flatMap({ compiled.graph.type(of: $0.value) }) else {
                throw ValidationError("layer '\(at)' has no output")
            }
            let rowShape = outputType.shape.dims.dropFirst().compactMap(\.value)
            let writer = try NpyStreamWriter(path: output, rowShape: rowShape)
            let progress = Progress(total: files.count)
            var written: [String] = []
            do {
                try compiled.prepare(bindings: feeder.bindings(count: min(batch, files.count)))
                for start in stride(from: 0, to: files.count, by: batch) {
                    var images: [[Float]] = []
                    var names: [String] = []
                    for file in files[start..<min(start + batch, files.count)] {
                        do {
                            images.append(try feeder.values(forFile: file))
                            names.append(file)
                        } catch where keepGoing {
                            failures += 1
                            progress.interrupt(errorText(error))
                        }
                    }
                    if !images.isEmpty {
                        let result = try compiled.run([feeder.inputName: try feeder.tensor(rows: images)])
                        guard let features = result[outputName] else { continue }
                        try writer.append(features.values[...])
                        written.append(contentsOf: names)
                    }
                    progress.update(done: min(start + batch, files.count))
                }
                guard !written.isEmpty else { throw ValidationError("no image could be read") }
                try AtomicFile.write(Data((written.joined(separator: "\n") + "\n").utf8), to: sidecarPath)
                try writer.finish()
            } catch {
                writer.cancel()
                throw error
            }
            progress.finish()
            print("\(outputName): \(Shape(known: [written.count] + rowShape)) -> \(output) (file order in \(sidecarPath))")
        }
        if failures > 0 {
            FileHandle.standardError.write(Data("error: \(failures) image(s) could not be read; their rows are left out\n".utf8))
            throw ExitCode.failure
        }
    }

    private var sidecarPath: String {
        (output.hasSuffix(".npy") ? String(output.dropLast(4)) : output) + ".files.txt"
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
