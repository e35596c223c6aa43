import Foundation
import Keel
import XCTest

/// What `keel` does to the files it writes: devices, FIFOs and symlinks as outputs, all-or-none
/// outputs, interrupts and kills, `.files.txt` rows, shards and their merge.
final class OutputFileTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-outputs-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/images", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/out", withIntermediateDirectories: true)
        let graph = """
        model small
        input image: f32[N, 64, 64, 3] preprocess: keras_vgg16
        conv = conv2d(8, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        flat = flatten()
        logits = dense(3)
        output logits
        """
        try graph.write(toFile: folder + "/small.keel", atomically: true, encoding: .utf8)
        let multi = """
        model multi
        input x: f32[N, 4]
        a = dense(3)
        b = dense(2)
        output a
        output b
        """
        try multi.write(toFile: folder + "/multi.keel", atomically: true, encoding: .utf8)
        try NpyFile.write(Tensor(shape: [2, 4], values: [1, 2, 3, 4, 5, 6, 7, 8]), to: folder + "/x.npy")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func keel(_ arguments: [String], environment: [String: String] = [:]) throws -> CLITests.Result {
        try CLITests.keel(arguments, environment: environment)
    }

    /// Copies the samples `copies` times into images/ (names sort in a stable order).
    private func makeImages(copies: Int) throws {
        let samples = try ImageFiles.list([CLITests.repository.path + "/samples"])
        for copy in 0..<copies {
            for sample in samples {
                let name = String(format: "%02d-", copy) + URL(fileURLWithPath: sample).lastPathComponent
                try FileManager.default.copyItem(atPath: sample, toPath: folder + "/images/" + name)
            }
        }
    }

    private func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    private func listing(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    // MARK: F1 — what an output path names

    /// glibc's makedev for small numbers (a macro Swift does not import).
    private func deviceNumber(_ major: UInt64, _ minor: UInt64) -> dev_t { dev_t(major << 8 | minor) }

    func testSymlinkOutputWritesItsTargetAndStaysALink() throws {
        try FileManager.default.createDirectory(atPath: folder + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/out/link.npy", withDestinationPath: "../elsewhere/real.npy")
        let result = try keel(["run", folder + "/multi.keel", "--input", folder + "/x.npy", "--output", folder + "/out/link.npy"])
        XCTAssertEqual(result.status, 0, result.stderr)
        try NpyFile.write(Tensor(zeros: [1, 64, 64, 3]), to: folder + "/img.npy")
        let written = try keel(["run", folder + "/small.keel", "--input", folder + "/img.npy", "--output", folder + "/out/link.npy"])
        XCTAssertEqual(written.status, 0, written.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/out/link.npy"), "../elsewhere/real.npy")
        XCTAssertEqual(try NpyFile.read(path: folder + "/elsewhere/real.npy").shape, [1, 3])
        // No temporary file is left in either folder.
        XCTAssertEqual(try listing(folder + "/elsewhere"), ["real.npy"])
    }

    func testDevicesAndFIFOsAreWrittenNotReplaced() throws {
        let dev = folder + "/dev"
        try FileManager.default.createDirectory(atPath: dev, withIntermediateDirectories: true)
        guard mknod(dev + "/null", S_IFCHR | 0o666, deviceNumber(1, 3)) == 0, mknod(dev + "/full", S_IFCHR | 0o666, deviceNumber(1, 7)) == 0 else {
            throw XCTSkip("mknod needs root: device outputs are not tested here")
        }
        let toNull = try keel(["run", folder + "/multi.keel", "--input", folder + "/x.npy", "--output", dev + "/null"])
        XCTAssertEqual(toNull.status, 0, toNull.stderr)
        // Two outputs named after the stem land beside it; the device itself stays a device.
        var info = stat()
        XCTAssertEqual(stat(dev + "/null", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR)
        try NpyFile.write(Tensor(zeros: [1, 64, 64, 3]), to: folder + "/img.npy")
        let single = try keel(["run", folder + "/small.keel", "--input", folder + "/img.npy", "--output", dev + "/null"])
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertEqual(stat(dev + "/null", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR)
        let full = try keel(["run", folder + "/small.keel", "--input", folder + "/img.npy", "--output", dev + "/full"])
        XCTAssertEqual(full.status, 1)
        XCTAssertTrue(full.stderr.contains(dev + "/full: cannot write: No space left on device"), full.stderr)
        XCTAssertEqual(stat(dev + "/full", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR)
        XCTAssertEqual(mknod(dev + "/block", S_IFBLK | 0o600, deviceNumber(7, 0)), 0)
        let block = try keel(["run", folder + "/small.keel", "--input", folder + "/img.npy", "--output", dev + "/block"])
        XCTAssertEqual(block.status, 1)
        XCTAssertTrue(block.stderr.contains("is a block device"), block.stderr)
        // A FIFO gets the bytes a reader sees, and stays a FIFO.
        XCTAssertEqual(mkfifo(dev + "/fifo", 0o600), 0)
        let fifoPath = dev + "/fifo"
        let received = expectation(description: "reader")
        nonisolated(unsafe) var bytes = Data()
        Thread.detachNewThread {
            bytes = FileHandle(forReadingAtPath: fifoPath)?.readDataToEndOfFile() ?? Data()
            received.fulfill()
        }
        let fifo = try keel(["run", folder + "/small.keel", "--input", folder + "/img.npy", "--output", fifoPath])
        XCTAssertEqual(fifo.status, 0, fifo.stderr)
        wait(for: [received], timeout: 20)
        XCTAssertEqual(try NpyFile.decode(bytes, path: "fifo").shape, [1, 3])
        XCTAssertEqual(stat(fifoPath, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO)
    }

    // MARK: F5 — all outputs or none

    func testFailedCommandsLeaveNoFiles() throws {
        try FileManager.default.createDirectory(atPath: folder + "/out/res.b.npy", withIntermediateDirectories: true)
        let run = try keel(["run", folder + "/multi.keel", "--input", folder + "/x.npy", "--output", folder + "/out/res.npy"])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("res.b.npy: cannot write: it is a folder"), run.stderr)
        XCTAssertEqual(try listing(folder + "/out"), ["res.b.npy"])
        try makeImages(copies: 1)
        try FileManager.default.createDirectory(atPath: folder + "/out/feat.files.txt", withIntermediateDirectories: true)
        let extract = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/feat.npy"])
        XCTAssertEqual(extract.status, 1)
        XCTAssertTrue(extract.stderr.contains("feat.files.txt: cannot write: it is a folder"), extract.stderr)
        XCTAssertEqual(try listing(folder + "/out"), ["feat.files.txt", "res.b.npy"])
    }

    func testFileNamesWithNewlinesStayOneRowEach() throws {
        let sample = CLITests.repository.path + "/samples/coffee.jpg"
        try FileManager.default.copyItem(atPath: sample, toPath: folder + "/images/a\nb.jpg")
        try FileManager.default.copyItem(atPath: sample, toPath: folder + "/images/plain.jpg")
        try FileManager.default.copyItem(atPath: sample, toPath: folder + "/images/tab\tand\u{1B}esc.jpg")
        let result = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/f.npy"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let text = try String(contentsOfFile: folder + "/out/f.files.txt", encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0], "\"" + folder + "/images/a\\nb.jpg\"")
        XCTAssertEqual(lines[1], folder + "/images/plain.jpg")
        XCTAssertEqual(lines[2], "\"" + folder + "/images/tab\\tand\\u001besc.jpg\"")
        XCTAssertEqual(try FileListText.decode(text, path: "f.files.txt"),
                       ["a\nb.jpg", "plain.jpg", "tab\tand\u{1B}esc.jpg"].map { folder + "/images/" + $0 })
        XCTAssertEqual(try NpyFile.read(path: folder + "/out/f.npy").shape, [3, 32, 32, 8])
    }

    func testEmptyShardWritesAnEmptyResult() throws {
        let sample = CLITests.repository.path + "/samples/coffee.jpg"
        try FileManager.default.copyItem(atPath: sample, toPath: folder + "/images/one.jpg")
        try FileManager.default.copyItem(atPath: sample, toPath: folder + "/images/two.jpg")
        let result = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/s0.npy", "--shard", "0/3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try NpyFile.read(path: folder + "/out/s0.npy").shape, [0, 32, 32, 8])
        XCTAssertEqual(try String(contentsOfFile: folder + "/out/s0.files.txt", encoding: .utf8), "")
    }

    // MARK: Interrupts, kills and --resume

    /// Starts `keel` without waiting; its output goes nowhere.
    private func start(_ arguments: [String]) throws -> Process {
        let bundle = Bundle(for: CLITests.self).bundleURL
        let products = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        let process = Process()
        process.executableURL = products.appendingPathComponent("keel")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until the run's checkpoint records at least `rows` rows (the run is then mid-way).
    private func waitForCheckpoint(_ journal: String, rows: Int, of process: Process) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, process.isRunning {
            if let data = contents(journal), let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let done = record["rows"] as? Int, done >= rows { return }
            usleep(2000)
        }
        XCTFail("the run ended or stalled before its checkpoint reached \(rows) rows")
    }

    func testInterruptLeavesOnlyTheCompletePreviousOutput() throws {
        try makeImages(copies: 4)
        let arguments = ["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/f.npy", "--batch", "1"]
        let first = try keel(arguments)
        XCTAssertEqual(first.status, 0, first.stderr)
        let features = contents(folder + "/out/f.npy"), names = contents(folder + "/out/f.files.txt")
        for (signalNumber, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143)), (SIGHUP, Int32(129))] {
            let process = try start(arguments)
            try waitForCheckpoint(folder + "/out/.f.npy.partial.json", rows: 2, of: process)
            kill(process.processIdentifier, signalNumber)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, status, "signal \(signalNumber)")
            XCTAssertEqual(try listing(folder + "/out"), ["f.files.txt", "f.npy"], "signal \(signalNumber)")
            XCTAssertEqual(contents(folder + "/out/f.npy"), features)
            XCTAssertEqual(contents(folder + "/out/f.files.txt"), names)
        }
    }

    func testResumeAfterKillIsByteIdenticalToAnUninterruptedRun() throws {
        try makeImages(copies: 4)
        let base = ["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--batch", "3"]
        let whole = try keel(base + ["--output", folder + "/out/whole.npy"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let process = try start(base + ["--output", folder + "/out/resumed.npy"])
        try waitForCheckpoint(folder + "/out/.resumed.npy.partial.json", rows: 6, of: process)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/out/resumed.npy"))
        let resumed = try keel(base + ["--output", folder + "/out/resumed.npy", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("note: resuming: "), resumed.stderr)
        XCTAssertEqual(contents(folder + "/out/resumed.npy"), contents(folder + "/out/whole.npy"))
        XCTAssertEqual(contents(folder + "/out/resumed.files.txt"), contents(folder + "/out/whole.files.txt"))
        XCTAssertEqual(try listing(folder + "/out"), ["resumed.files.txt", "resumed.npy", "whole.files.txt", "whole.npy"])
        // Another model or option is not continued from those rows.
        let process2 = try start(base + ["--output", folder + "/out/other.npy"])
        try waitForCheckpoint(folder + "/out/.other.npy.partial.json", rows: 3, of: process2)
        kill(process2.processIdentifier, SIGKILL)
        process2.waitUntilExit()
        let changed = try keel(base + ["--output", folder + "/out/other.npy", "--resume", "--seed", "7"])
        XCTAssertEqual(changed.status, 1)
        XCTAssertTrue(changed.stderr.contains("cannot resume: the partial run was made with another model, options or file list"), changed.stderr)
    }

    // MARK: Shards

    func testShardNumbersAreCheckedAndExplained() throws {
        try makeImages(copies: 1)
        let last = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/s.npy", "--shard", "3/3"])
        XCTAssertEqual(last.status, 64)
        XCTAssertTrue(last.stderr.contains("shards are numbered from 0, so the 3 shards are 0/3 to 2/3"), last.stderr)
        let first = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/s.npy", "--shard", "1/3"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("note: shard 1/3 (numbered from 0): files 2..<4 of 7"), first.stderr)
    }

    func testShardAutoReadsSlurmAndKubernetesArrays() throws {
        let files = (0..<10).map { "f\($0).jpg" }
        XCTAssertEqual(try Shard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "3",
                                                             "SLURM_ARRAY_TASK_MAX": "6", "SLURM_ARRAY_TASK_COUNT": "4"]),
                       Shard(index: 2, count: 4))
        XCTAssertThrowsError(try Shard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0",
                                                                   "SLURM_ARRAY_TASK_MAX": "8", "SLURM_ARRAY_TASK_COUNT": "3"])) {
            XCTAssertTrue(String(describing: $0).contains("not contiguous"), "\($0)")
        }
        XCTAssertEqual(try Shard.parse("auto", count: 4, environment: ["JOB_COMPLETION_INDEX": "3"]), Shard(index: 3, count: 4))
        XCTAssertEqual(try Shard.parse("auto", environment: ["JOB_COMPLETION_INDEX": "0", "KEEL_SHARD_COUNT": "2"]), Shard(index: 0, count: 2))
        XCTAssertThrowsError(try Shard.parse("auto", environment: ["JOB_COMPLETION_INDEX": "0"]))
        XCTAssertThrowsError(try Shard.parse("auto", count: 4, environment: ["JOB_COMPLETION_INDEX": "4"]))
        XCTAssertThrowsError(try Shard.parse("auto", environment: [:]))
        // Every file lands in exactly one shard, in order.
        XCTAssertEqual((0..<3).flatMap { files[Shard(index: $0, count: 3).range(of: files.count)] }, files)

        try makeImages(copies: 1)
        let environment = ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "2", "SLURM_ARRAY_TASK_COUNT": "2"]
        let result = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/s.npy",
                               "--shard", "auto"], environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("note: shard 1/2 (numbered from 0): files 3..<7 of 7"), result.stderr)
    }

    func testMergeJoinsShardsInOrderAndRefusesGapsAndOverlaps() throws {
        try makeImages(copies: 1)
        let whole = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images", "--output", folder + "/out/whole.npy"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        for index in 0..<3 {
            let shard = try keel(["extract", folder + "/small.keel", "--at", "pool", folder + "/images",
                                  "--output", folder + "/out/s\(index).npy", "--shard", "\(index)/3"])
            XCTAssertEqual(shard.status, 0, shard.stderr)
        }
        let merged = try keel(["merge", folder + "/out/s2.npy", folder + "/out/s0.npy", folder + "/out/s1.npy", "-o", folder + "/all.npy"])
        XCTAssertEqual(merged.status, 0, merged.stderr)
        XCTAssertEqual(try NpyFile.read(path: folder + "/all.npy"), try NpyFile.read(path: folder + "/out/whole.npy"))
        XCTAssertEqual(contents(folder + "/all.files.txt"), contents(folder + "/out/whole.files.txt"))

        let gap = try keel(["merge", folder + "/out/s0.npy", folder + "/out/s2.npy", "-o", folder + "/gap.npy"])
        XCTAssertEqual(gap.status, 1)
        XCTAssertTrue(gap.stderr.contains("shard 1/3 missing"), gap.stderr)
        let twice = try keel(["merge", folder + "/out/s0.npy", folder + "/out/s1.npy", folder + "/out/s1.npy", folder + "/out/s2.npy", "-o", folder + "/twice.npy"])
        XCTAssertEqual(twice.status, 1)
        XCTAssertTrue(twice.stderr.contains("shard 1/3 is also given as"), twice.stderr)
        let unsharded = try keel(["merge", folder + "/out/whole.npy", "-o", folder + "/x.npy"])
        XCTAssertEqual(unsharded.status, 1)
        XCTAssertTrue(unsharded.stderr.contains("only outputs of `keel extract --shard` can be merged"), unsharded.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/gap.npy"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/twice.npy"))
    }
}
