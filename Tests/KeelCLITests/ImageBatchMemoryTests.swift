import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 16, "also": a batch of images holds one decoded full-size image at a time, not all of
/// them (12 large PNGs once peaked at 3.8 GB). Peak memory is measured on the `keel` process
/// itself (wait4's ru_maxrss), so nothing else the suite has run counts.
final class ImageBatchMemoryTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "keel-image-memory-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try """
        model tiny
        input image: f32[N, 32, 32, 3] preprocess: keras_vgg16
        pool = max_pool2d(2)
        output pool
        """.write(toFile: folder + "/tiny.keel", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Ten 1000×1000 PNGs (3 MB each decoded, 4 KB on disk) in one batch of 10 peak within two
    /// decoded images of one of them alone (the allocator may keep a freed one); holding them all
    /// would add 27 MB.
    func testABatchHoldsOneDecodedImageAtATime() throws {
        let fixture = CLITests.repository.appendingPathComponent("Tests/KeelCLITests/Fixtures/solid_1000x1000.png").path
        let decodedBytes = 1000 * 1000 * 3
        let images = try (0..<10).map { index -> String in
            let path = folder + "/image\(index).png"
            try FileManager.default.copyItem(atPath: fixture, toPath: path)
            return path
        }
        func peak(_ files: [String]) throws -> Int {
            let (status, peakBytes) = try peakResidentBytes(
                ["extract", folder + "/tiny.keel"] + files + ["--at", "pool", "--batch", "10", "--output", folder + "/features.npy"])
            XCTAssertEqual(status, 0)
            return peakBytes
        }
        let one = try peak([images[0]])
        let ten = try peak(images)
        XCTAssertLessThan(ten - one, 2 * decodedBytes, "one image: \(one) bytes, ten: \(ten) bytes")
        // The features are really there: 10 rows of [16, 16, 3].
        let written = try Data(contentsOf: URL(fileURLWithPath: folder + "/features.npy"))
        XCTAssertGreaterThan(written.count, 10 * 16 * 16 * 3 * 4)
    }

    /// Runs the built `keel` with `arguments` (output discarded) and returns its exit status and
    /// peak resident set size in bytes.
    private func peakResidentBytes(_ arguments: [String]) throws -> (status: Int32, bytes: Int) {
        let bundle = Bundle(for: CLITests.self).bundleURL
        let products = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        let executable = products.appendingPathComponent("keel").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let log = folder + "/keel.log"
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
        let exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        if exited != 0 { XCTFail((try? String(contentsOfFile: log, encoding: .utf8)) ?? "keel failed") }
        return (exited, usage.ru_maxrss * 1024)
    }
}
