@testable import KeelONNX
import XCTest

/// The Einsum equation parser: indices per operand and the output's (explicit, implicit, `...`),
/// and the equations it refuses with a reason. Values are checked end to end against ONNX
/// Runtime by DynamicShapeTests.testEinsumForms.
final class EinsumEquationTests: XCTestCase {
    struct Failure: Error { let message: String }

    func parse(_ equation: String, _ ranks: [Int]) throws -> EinsumEquation {
        try EinsumEquation(equation, ranks: ranks, fail: { Failure(message: $0) })
    }

    func letters(_ text: String) -> [Int] { text.unicodeScalars.map { Int($0.value) } }

    func testExplicitOutput() throws {
        let parsed = try parse("bhid,bhjd->bhij", [4, 4])
        XCTAssertEqual(parsed.operands, [letters("bhid"), letters("bhjd")])
        XCTAssertEqual(parsed.output, letters("bhij"))
    }

    /// Without `->` the output is the indices used once, in alphabetical order (capitals first).
    func testImplicitOutput() throws {
        XCTAssertEqual(try parse("kj,ji", [2, 2]).output, letters("ik"))
        XCTAssertEqual(try parse("Ab,bc", [2, 2]).output, letters("Ac"))
    }

    /// Ellipsis axes align from the right across operands and lead an implicit output.
    func testEllipsisAxesAlignFromTheRight() throws {
        let parsed = try parse("...ij,...jk", [4, 3])
        let (outer, inner) = (EinsumEquation.ellipsisBase + 1, EinsumEquation.ellipsisBase)
        XCTAssertEqual(parsed.operands[0], [outer, inner] + letters("ij"))
        XCTAssertEqual(parsed.operands[1], [inner] + letters("jk"))
        XCTAssertEqual(parsed.output, [outer, inner] + letters("ik"))
        XCTAssertEqual(try parse("...i->i...", [3]).output, letters("i") + [outer, inner])
    }

    func testRefusalsSayWhy() {
        let cases: [(String, [Int], String)] = [
            ("ii->i", [2], "repeats an index"),
            ("ij,jk->il", [2, 2], "index 'l', which no operand has"),
            ("ij,jk->ik", [2], "names 2 operand(s) but the node has 1"),
            ("ijk->i", [2], "does not fit an operand of rank 2"),
            ("i.j->i", [2], "'.', which is not a letter"),
            ("ij->ii", [2], "repeats an index"),
        ]
        for (equation, ranks, expected) in cases {
            XCTAssertThrowsError(try parse(equation, ranks), equation) { error in
                let message = (error as? Failure)?.message ?? ""
                XCTAssertTrue(message.contains(expected), "\(equation): \(message)")
            }
        }
    }
}
