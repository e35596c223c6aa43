import Foundation
import Keel
import KeelRuntime
import XCTest

/// NaN and infinity through every op Keel imports, against ONNX Runtime (or NumPy where ONNX
/// Runtime has no consistent rule; the manifest says which and why). The fixtures come from
/// tools/gen_nonfinite_fixtures.py: each model's input holds NaN, +inf and -inf.
final class NonFiniteConformanceTests: XCTestCase {
    private struct Case: Decodable {
        let `case`: String
        let op: String
        let reference: String
    }

    private struct Manifest: Decodable { let cases: [Case] }

    /// Cases Keel computes differently on purpose, and the weaker property they must keep.
    /// A Winograd tile mixes all 6×6 inputs, so an infinity spreads to the tile's other outputs
    /// as NaN where ONNX Runtime's direct sums keep ±inf or a finite value: every value the
    /// reference has non-finite is non-finite in Keel too (nothing is masked), finite values match.
    private static let winogradSpread: Set<String> = ["conv_relu_maxpool"]

    func testEveryImportedOpTreatsNaNAndInfinityAsTheReferenceDoes() throws {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/nonfinite", withExtension: nil))
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        var failed: [String] = []
        for entry in manifest.cases {
            let path = { (suffix: String) in folder.appendingPathComponent(entry.case + suffix).path }
            do {
                let (model, _) = try ModelPipeline(path: path(".onnx"), threads: 1).compile()
                let input = try NpyFile.read(path: path(".in.npy"))
                let expected = try NpyFile.read(path: path(".out.npy"))
                let output = try XCTUnwrap(try model.run([model.inputNames[0]: input])[model.outputNames[0]])
                XCTAssertEqual(output.shape, expected.shape, entry.case)
                let mismatches = zip(output.values, expected.values).enumerated().filter { _, pair in
                    let (value, reference) = pair
                    if Self.winogradSpread.contains(entry.case) {
                        return reference.isFinite ? (value.isFinite && !(abs(value - reference) <= 1e-4 + 1e-4 * abs(reference))) : value.isFinite
                    }
                    if reference.isNaN { return !value.isNaN }
                    if reference.isInfinite { return value != reference }
                    return !(abs(value - reference) <= 1e-4 + 1e-4 * abs(reference))
                }
                if let (index, (value, reference)) = mismatches.first {
                    failed.append("\(entry.case) (\(entry.op), vs \(entry.reference)): \(mismatches.count) of \(expected.values.count) differ, first at \(index): \(value) vs \(reference)")
                }
            } catch {
                failed.append("\(entry.case) (\(entry.op)): \(error)")
            }
        }
        XCTAssertEqual(failed, [], failed.joined(separator: "\n"))
        XCTAssertGreaterThanOrEqual(manifest.cases.count, 60)
    }
}
