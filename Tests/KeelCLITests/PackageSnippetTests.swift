import Foundation
import XCTest

/// The README's `Package.swift` snippet and example, used exactly as written by a new package that
/// depends on this checkout by path: it must resolve without the argument parser, build, and print
/// what the example promises.
///
/// Part of every `make test`. The package lives in `.build/package-snippet` (its own build folder
/// inside), rewritten from the README each run: on a fresh clone it builds Keel's library once in
/// debug (about 2 minutes on 2 cores), later runs only what the README or the sources changed.
/// KEEL_PACKAGE_SNIPPET_TEST=0 skips it for quick local runs.
final class PackageSnippetTests: XCTestCase {
    private func swiftBlocks(in readme: String) -> [String] {
        let section = readme.components(separatedBy: "## Embedding Keel in Swift").dropFirst().first?
            .components(separatedBy: "\n## ").first ?? ""
        return section.components(separatedBy: "```swift\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }
    }

    func testReadmeSnippetBuildsAndRunsTheExample() throws {
        if ProcessInfo.processInfo.environment["KEEL_PACKAGE_SNIPPET_TEST"] == "0" {
            throw XCTSkip("KEEL_PACKAGE_SNIPPET_TEST=0: not building a package from the README snippet")
        }
        let repository = CLITests.repository
        let readme = try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = swiftBlocks(in: readme)
        let manifest = try XCTUnwrap(blocks.first { $0.hasPrefix("// swift-tools-version") }, "no Package.swift snippet")
        let example = try XCTUnwrap(blocks.first { $0.hasPrefix("import Keel") }, "no example")
        XCTAssertTrue(manifest.contains("path: \"../keel\""), manifest)

        // A checkout whose folder is not called Keel: the snippet must not depend on the folder's name.
        // The folder stays between runs (same paths, so its build is incremental); only the
        // package's files and its resolution are made afresh.
        let folder = repository.appendingPathComponent(".build/package-snippet")
        let app = folder.appendingPathComponent("MyApp")
        let checkout = folder.appendingPathComponent("keel-checkout")
        try FileManager.default.createDirectory(at: app.appendingPathComponent("Sources/MyApp"), withIntermediateDirectories: true)
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: checkout.path)) != repository.path {
            try? FileManager.default.removeItem(at: checkout)
            try FileManager.default.createSymbolicLink(at: checkout, withDestinationURL: repository)
        }
        try? FileManager.default.removeItem(at: app.appendingPathComponent("Package.resolved"))
        try manifest.replacingOccurrences(of: "path: \"../keel\"", with: "path: \"../keel-checkout\"")
            .write(to: app.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try example.write(to: app.appendingPathComponent("Sources/MyApp/main.swift"), atomically: true, encoding: .utf8)

        let resolve = try run("swift", ["package", "resolve"], in: app)
        XCTAssertEqual(resolve.status, 0, resolve.output)
        let resolved = (try? String(contentsOf: app.appendingPathComponent("Package.resolved"), encoding: .utf8)) ?? ""
        XCTAssertFalse(resolved.contains("swift-argument-parser"), "traits: [] still resolves the argument parser:\n\(resolved)")

        let build = try run("swift", ["build"], in: app)
        XCTAssertEqual(build.status, 0, build.output)
        XCTAssertFalse(build.output.contains("Compiling ArgumentParser"), build.output)
        let binary = app.appendingPathComponent(".build/debug/MyApp").path
        let result = try run(binary, [], in: repository)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output, "[1, 49, 768]\n")
    }

    private func run(_ tool: String, _ arguments: [String], in folder: URL) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.currentDirectoryURL = folder
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
