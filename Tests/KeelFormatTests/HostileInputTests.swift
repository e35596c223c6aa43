import Foundation
import KeelIR
import XCTest
@testable import KeelFormat

/// .keel files made to break the front end (issue 16): deep and long expansions must finish fast
/// or stop at a named limit, and files a model names must stay inside its folder.
final class HostileInputTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("keel-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    private func write(_ text: String, _ name: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    private func headline(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch let error as Diagnostic { return error.headline } catch { return "\(error)" }
    }

    /// F4: 3,000 blocks each calling the next overflowed the expander's stack.
    func testF4ThreeThousandChainedBlockCallsExpand() throws {
        var text = "model m\ninput x: f32[N, 8]\n"
        for index in 0..<3_000 { text += "block b\(index)(p) {\n  b\(index + 1)(p)\n}\n" }
        text += "block b3000(p) {\n  \"r{p}\" = relu()\n}\nb0(z)\n"
        let graph = try loadKeelGraph(path: try write(text, "chain.keel"))
        XCTAssertEqual(graph.nodes.map(\.name), ["rz"])
    }

    /// F4: a chain of 10,000 nested includes overflowed the stack; it now stops at the depth limit.
    func testF4TenThousandNestedIncludesStopAtTheDepthLimit() throws {
        let deep = folder.appendingPathComponent("deep")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        for index in 0...10_000 {
            XCTAssertTrue(FileManager.default.createFile(atPath: deep.appendingPathComponent("e\(index).keel").path,
                                                         contents: Data("include \"e\(index + 1).keel\"\n".utf8)))
        }
        _ = try write("input x: f32[N, 4]\nr = relu()\n", "deep/e10001.keel")
        let top = try write("model deep\ninclude \"e0.keel\"\n", "deep/top.keel")
        XCTAssertEqual(headline { try loadKeelGraph(path: top) }.map { $0.replacingOccurrences(of: folder.path + "/", with: "") },
                       "deep/e998.keel:1:1: error: includes nest more than 1,000 files deep")
    }

    /// F6: nested empty loops made 10^8 (or 10^12) iterations and no layers; a total budget stops them.
    func testF6NestedEmptyRepeatsStopAtTheStepBudget() throws {
        let two = try write("model m\ninput x: f32[N,8]\nrepeat a in 1..10000 {\n repeat b in 1..10000 {\n }\n}\nr = relu()\n", "rep2.keel")
        let three = try write("model m\ninput x: f32[N,8]\nrepeat a in 1..10000 {\n repeat b in 1..10000 {\n  repeat c in 1..10000 {\n }\n }\n}\n", "rep3.keel")
        let start = Date()
        XCTAssertEqual(headline { try loadKeelGraph(path: two) }?.hasSuffix(
            "rep2.keel:4:2: error: the model takes more than 1,000,000 expansion steps (layers, block calls and loop iterations)"), true)
        XCTAssertEqual(headline { try loadKeelGraph(path: three) }?.contains("more than 1,000,000 expansion steps"), true)
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
    }

    /// F2: 10,000 block calls expand and lower in well under the time a user would wait.
    func testF2TenThousandBlockCallsCompileInSeconds() throws {
        var text = "model m\ninput x: f32[N, 8]\nblock unit(i) {\n  \"r{i}\" = relu()\n}\n"
        for index in 0..<10_000 { text += "unit(\(index))\n" }
        let start = Date()
        let graph = try loadKeelGraph(path: try write(text, "calls.keel"))
        XCTAssertEqual(graph.nodes.count, 10_000)
        XCTAssertEqual(graph.nodes.last?.inputs, ["r9998"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    /// Include paths are confined to the model's folder tree, symbolic links followed, unless
    /// the folder is allowed explicitly.
    func testIncludesOutsideTheModelsFolderAreRefused() throws {
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("keel-outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        try "input x: f32[N, 4]\nr = relu()\n".write(to: outside.appendingPathComponent("lib.keel"), atomically: true, encoding: .utf8)
        let escaping = try write("model m\ninclude \"../\(outside.lastPathComponent)/lib.keel\"\n", "escape.keel")
        XCTAssertEqual(headline { try loadKeelGraph(path: escaping) }?.contains("lies outside the model's folder"), true)
        let absolute = try write("model m\ninclude \"/etc/passwd\"\n", "absolute.keel")
        XCTAssertEqual(headline { try loadKeelGraph(path: absolute) }?.contains("'/etc/passwd' lies outside the model's folder"), true)
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("link.keel").path,
                                                   withDestinationPath: outside.appendingPathComponent("lib.keel").path)
        let linked = try write("model m\ninclude \"link.keel\"\n", "linked.keel")
        XCTAssertEqual(headline { try loadKeelGraph(path: linked) }?.contains("'link.keel' lies outside the model's folder"), true)
        let allowed = try loadKeelGraph(path: linked, confinement: PathConfinement(allowing: [outside.path]))
        XCTAssertEqual(allowed.nodes.map(\.name), ["r"])
    }

    /// A FIFO named by an include is refused at once instead of blocking the load.
    func testIncludedFIFOIsRefused() throws {
        let fifo = folder.appendingPathComponent("pipe.keel").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let model = try write("model m\ninclude \"pipe.keel\"\n", "fifo.keel")
        XCTAssertEqual(headline { try loadKeelGraph(path: model) }?.hasSuffix("error: included file 'pipe.keel' is not a regular file"), true)
        XCTAssertEqual(headline { try loadKeelGraph(path: fifo) }?.hasSuffix("not a regular file"), true)
    }

    /// Names from files are printed with control characters escaped: one error, one line.
    func testNamesInErrorsAreEscaped() {
        let name = "evil\n\u{1B}[31mname"
        let diagnostic = Diagnostic("relu 'r' reads undefined value '\(name)'", notes: [Diagnostic.Note("'\(name)' is declared nowhere")])
        XCTAssertEqual(diagnostic.description, """
            error: relu 'r' reads undefined value 'evil\\n\\u{1B}[31mname'
            note: 'evil\\n\\u{1B}[31mname' is declared nowhere
            """)
    }
}
