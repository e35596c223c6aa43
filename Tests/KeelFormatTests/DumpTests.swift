import XCTest
import KeelIR
@testable import KeelFormat

final class DumpTests: XCTestCase {
    func testDumpErrors() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: TestPaths.fixture("errors")).sorted()
        for name in names {
            do {
                _ = try loadKeelGraph(path: TestPaths.fixture("errors/" + name))
                print("NO ERROR \(name)")
            } catch {
                print("\(error)".replacingOccurrences(of: TestPaths.fixture("errors") + "/", with: ""))
            }
        }
    }
}
