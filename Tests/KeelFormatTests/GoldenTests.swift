import XCTest
import KeelIR
@testable import KeelFormat

/// Each graph's printed IR against a reviewed golden file in Fixtures/golden. Set
/// KEEL_UPDATE_GOLDEN=1 to rewrite them after an intended change, then review the diff.
final class GoldenTests: XCTestCase {
    func testGraphsPrintTheirGoldenIR() throws {
        let update = ProcessInfo.processInfo.environment["KEEL_UPDATE_GOLDEN"] == "1"
        for name in GraphTests.graphNames {
            let text = try loadKeelGraph(path: TestPaths.graph(name)).irText
            let golden = TestPaths.fixture("golden/" + name.replacingOccurrences(of: ".keel", with: ".ir"))
            if update {
                try text.write(toFile: golden, atomically: true, encoding: .utf8)
                continue
            }
            let expected = try String(contentsOfFile: golden, encoding: .utf8)
            XCTAssertEqual(text, expected, name)
        }
    }
}
