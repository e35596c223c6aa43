import Foundation
import XCTest

/// `keel compile` as the issue states its must-shows: what the optimised graphs contain.
final class CompileCommandTests: XCTestCase {
    private func nodes(_ file: String, _ extra: [String] = []) throws -> [[String: Any]] {
        let result = try CLITests.keel(["compile", file, "--json"] + extra)
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return try XCTUnwrap(json["nodes"] as? [[String: Any]])
    }

    func testResNetHeadFoldsBatchNormIntoOneFusedDense() throws {
        let graph = try nodes("graphs/vgg16_resnet_head.keel")
        XCTAssertFalse(graph.contains { $0["op"] as? String == "batch_norm" })
        let dense = try XCTUnwrap(graph.first { $0["name"] as? String == "dense" })
        XCTAssertEqual(dense["op"] as? String, "dense")
        XCTAssertEqual((dense["attributes"] as? [String: Any])?["activation"] as? String, "relu")
        // The fused node remembers the three lines it came from.
        XCTAssertEqual((dense["locations"] as? [String])?.count, 3)
        XCTAssertFalse(graph.contains { $0["name"] as? String == "activation" })
    }

    func testViTHeadHasNoConvolutionLeft() throws {
        let graph = try nodes("graphs/vgg16_vit_head.keel")
        // block5_pool runs inside block5_conv3 (max-pool-fusion).
        let headStart = try XCTUnwrap(graph.firstIndex { $0["name"] as? String == "block5_conv3" })
        XCTAssertFalse(graph[(headStart + 1)...].contains { $0["op"] as? String == "conv2d" })
        XCTAssertEqual(graph.filter { $0["op"] as? String == "conv2d" }.count, 13)
        let unoptimised = try nodes("graphs/vgg16_vit_head.keel", ["-O0"])
        XCTAssertEqual(unoptimised.filter { $0["op"] as? String == "conv2d" }.count, 14)
    }

    func testPrintIRAfterAllNamesEveryPassWithItsStatistic() throws {
        let result = try CLITests.keel(["compile", "graphs/vgg16_resnet_head.keel", "--print-ir-after-all"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("// after batch-norm-folding: "), result.stdout)
        XCTAssertTrue(result.stdout.contains("// after epilogue-fusion: "), result.stdout)
    }

    func testCompiledFileRunsAndDamagedOneIsRefused() throws {
        let folder = NSTemporaryDirectory() + "keel-compile-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let compiled = try CLITests.keel(["compile", "graphs/vgg16_vit_head.keel", "-o", folder + "/vit.keelc"])
        XCTAssertEqual(compiled.status, 0, compiled.stderr)
        let check = try CLITests.keel(["check", folder + "/vit.keelc"])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stdout.contains("tokens: f32[N,49,768]"), check.stdout)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/vit.keelc"))
        bytes[8] = 9
        try bytes.write(to: URL(fileURLWithPath: folder + "/old.keelc"))
        let refused = try CLITests.keel(["check", folder + "/old.keelc"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("format version 9, but this keel reads versions 4, 5, 6, 7 and 8"), refused.stderr)
    }
}
