import Foundation
import KeelIR
@testable import KeelFormat

/// Paths of the repository's graphs/ folder and this target's fixtures, found from this file.
enum TestPaths {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let graphs = testsDirectory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("graphs")
    static let fixtures = testsDirectory.appendingPathComponent("Fixtures")

    static func graph(_ name: String) -> String { graphs.appendingPathComponent(name).path }
    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }
}
