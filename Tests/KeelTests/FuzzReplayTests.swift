import Foundation
import KeelFuzzTargets
import XCTest

/// Replays the fuzzing corpus (Fuzz/Corpus) and every input fuzzing ever crashed on (Fuzz/Crashes)
/// through the same readers the libFuzzer harness drives, without a fuzzer build: each must end
/// in a result or an error, quickly.
final class FuzzReplayTests: XCTestCase {
    func testCorpusAndCrashInputsReplayCleanly() throws {
        let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz")
        var replayed = 0
        for folder in ["Corpus", "Crashes"] {
            for target in FuzzTarget.allCases {
                let directory = fuzz.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
                for name in names.sorted() where !name.hasPrefix(".") {
                    let bytes = try Data(contentsOf: directory.appendingPathComponent(name))
                    let start = Date()
                    bytes.withUnsafeBytes { _ = target.run($0) }
                    XCTAssertLessThan(Date().timeIntervalSince(start), 10, "\(folder)/\(target.rawValue)/\(name) is a hang")
                    replayed += 1
                }
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, 20, "the committed corpus is missing")
    }
}
