import KeelIR
import XCTest

/// Sizes given for symbolic input dimensions: how they are written, what they fix, and every way
/// they can fail to apply.
final class InputShapesTests: XCTestCase {
    private let image: [(name: String, shape: Shape)] = [("x", ["N", 3, "H", "W"])]

    func testParsesExtentsNamesAndKeptAxes() throws {
        let shapes = try InputShapes.parsing(["1x3x320x256", "tokens=?,49,768", "y=Nx7x7x512"])
        XCTAssertEqual(shapes.entries, [
            .init(name: nil, extents: [1, 3, 320, 256]),
            .init(name: "tokens", extents: [nil, 49, 768]),
            .init(name: "y", extents: [nil, 7, 7, 512]),
        ])
        XCTAssertTrue(shapes.isStrict)
    }

    func testRefusesMalformedText() {
        for text in ["", "1x3x0x2", "1x-3", "1xx3", "=1x3", "1x3.5", "1x3x@"] {
            XCTAssertThrowsError(try InputShapes.parsing([text]), text) { error in
                XCTAssertEqual(error as? InputShapeError, .syntax(text))
            }
        }
    }

    func testFixesSymbolsAndKeepsTheBatchWhenAsked() throws {
        XCTAssertEqual(try InputShapes.parsing(["?x3x320x256"]).symbolValues(for: image), ["H": 320, "W": 256])
        XCTAssertEqual(try InputShapes.parsing(["2x3x320x256"]).symbolValues(for: image), ["N": 2, "H": 320, "W": 256])
        // A multiple of a symbol fixes the symbol: 98 tokens of 49·N is a batch of 2.
        XCTAssertEqual(try InputShapes.parsing(["98x768"]).symbolValues(for: [("t", [.scaled("N", by: 49), 768])]), ["N": 2])
        let run = InputShapes.ofRunInputs([(name: nil, extents: [4, 3, 33, 17])])
        XCTAssertEqual(try run.symbolValues(for: image), ["H": 33, "W": 17])
    }

    func testRefusesShapesThatCannotApply() throws {
        let two: [(name: String, shape: Shape)] = [("a", ["N", "H", 3]), ("b", ["N", "H", 5])]
        let cases: [(String, [(name: String, shape: Shape)], InputShapeError)] = [
            ("1x3x224", image, .rank(input: "x", declared: ["N", 3, "H", "W"], given: [1, 3, 224])),
            ("1x4x224x224", image, .mismatch(input: "x", declared: ["N", 3, "H", "W"], given: [1, 4, 224, 224], axis: 1)),
            ("z=1x3x2x2", image, .unknownInput("z", available: ["x"])),
            ("1x8x3", two, .unnamed(available: ["a", "b"])),
        ]
        for (text, inputs, expected) in cases {
            XCTAssertThrowsError(try InputShapes.parsing([text]).symbolValues(for: inputs), text) { error in
                XCTAssertEqual(error as? InputShapeError, expected)
            }
        }
        XCTAssertThrowsError(try InputShapes.parsing(["a=?x8x3", "b=?x9x5"]).symbolValues(for: two)) { error in
            XCTAssertEqual(error as? InputShapeError, .conflict(symbol: "H", input: "b", declared: ["N", "H", 5], values: [8, 9]))
            XCTAssertEqual("\(error)", "input 'b' is [N,H,5]: the shapes given make H both 8 and 9")
        }
        XCTAssertThrowsError(try InputShapes.parsing(["97x768"]).symbolValues(for: [("t", [.scaled("N", by: 49), 768])]))
    }

    /// Shapes read from a run's own tensors leave what cannot apply to the run, which reports it
    /// when it binds them; what does apply is still fixed.
    func testShapesOfRunInputsSkipWhatDoesNotApply() throws {
        let shapes = InputShapes.ofRunInputs([(name: nil, extents: [1, 4, 20, 30])])
        XCTAssertFalse(shapes.isStrict)
        XCTAssertEqual(try shapes.symbolValues(for: image), [:])
        let named = InputShapes.ofRunInputs([(name: "x", extents: [1, 3, 20, 30]), (name: "nope", extents: [1, 2])])
        XCTAssertEqual(try named.symbolValues(for: image), ["H": 20, "W": 30])
    }

    func testGraphFixingReplacesTheInputsSymbols() throws {
        var graph = Graph(name: "g")
        graph.inputs = [GraphInput(name: "x", type: TensorType(.float32, ["N", "H", "W", 3])),
                        GraphInput(name: "mask", type: TensorType(.float32, ["N", "H", "W", 1]))]
        let fixed = try graph.fixingInputs(InputShapes.parsing(["x=?x24x20x3"]))
        XCTAssertEqual(fixed.inputs.map(\.type.shape), [["N", 24, 20, 3], ["N", 24, 20, 1]])
        XCTAssertEqual(try graph.fixingInputs(InputShapes()), graph)
    }
}
