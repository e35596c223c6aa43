import XCTest
import KeelIR
@testable import KeelFormat

final class LexerTests: XCTestCase {
    private func kinds(_ source: String) throws -> [TokenKind] {
        try Lexer.tokenize(source, file: "t.keel").map(\.kind)
    }

    func testCommentsAndLineBreaksEndStatements() throws {
        XCTAssertEqual(try kinds("a = relu() # trailing\n# whole line\nb"), [
            .identifier("a"), .equals, .identifier("relu"), .leftParen, .rightParen, .newline, .newline,
            .identifier("b"), .endOfFile,
        ])
    }

    func testLineBreaksInsideGroupsAreBlanks() throws {
        XCTAssertEqual(try kinds("f(1,\n  2)\n[3\n]"), [
            .identifier("f"), .leftParen, .integer(1), .comma, .integer(2), .rightParen, .newline,
            .leftBracket, .integer(3), .rightBracket, .endOfFile,
        ])
    }

    func testNumbers() throws {
        XCTAssertEqual(try kinds("-1 0.001 1e-3 25_088 2.5E2"),
                       [.integer(-1), .number(0.001), .number(0.001), .integer(25088), .number(250), .endOfFile])
    }

    func testRangeIsNotAFraction() throws {
        XCTAssertEqual(try kinds("1..3"), [.integer(1), .dotDot, .integer(3), .endOfFile])
    }

    func testStringInterpolationParts() throws {
        let tokens = try Lexer.tokenize("\"{name}_conv{i}\" \"a\\{b\\}\"", file: "t.keel")
        XCTAssertEqual(tokens[0].kind, .string([
            .variable("name", SourceLocation(file: "t.keel", line: 1, column: 3)), .text("_conv"),
            .variable("i", SourceLocation(file: "t.keel", line: 1, column: 14)),
        ]))
        XCTAssertEqual(tokens[1].kind, .string([.text("a{b}")]))
    }

    func testTokenLocationsAreOneBased() throws {
        let tokens = try Lexer.tokenize("model m\n  x = relu()", file: "t.keel")
        XCTAssertEqual(tokens[3].location, SourceLocation(file: "t.keel", line: 2, column: 3))
        XCTAssertEqual(tokens[5].location, SourceLocation(file: "t.keel", line: 2, column: 7))
    }

    func testMalformedNumber() {
        XCTAssertThrowsError(try Lexer.tokenize("x = dense(12ab)", file: "t.keel")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, "t.keel:1:11: error: malformed number '12a'")
        }
    }
}

final class ParserTests: XCTestCase {
    private func parse(_ source: String) throws -> [Statement] {
        try Parser.parse(source: source, path: "t.keel").statements
    }

    private func at(_ line: Int, _ column: Int) -> SourceLocation { SourceLocation(file: "t.keel", line: line, column: column) }

    func testModelIncludeAndOutputs() throws {
        let statements = try parse("model vgg\nfrozen include \"vgg16.keel\"\noutput logits = dense_1\noutput dense_1")
        XCTAssertEqual(statements.count, 4)
        XCTAssertEqual(statements[0], .model("vgg", at(1, 7)))
        XCTAssertEqual(statements[1], .include(path: "vgg16.keel", frozen: true, location: at(2, 1)))
        XCTAssertEqual(statements[2], .output(OutputDeclaration(name: Expression(kind: .word("logits"), location: at(3, 8)),
                                                                value: Expression(kind: .word("dense_1"), location: at(3, 17)),
                                                                location: at(3, 1))))
        guard case .output(let bare) = statements[3] else { return XCTFail("not an output") }
        XCTAssertNil(bare.value)
    }

    func testInputDeclaration() throws {
        guard case .input(let input) = try parse("input x: f32[N, 3, 224, 224] nchw preprocess: torch")[0] else {
            return XCTFail("not an input")
        }
        XCTAssertEqual(input.name, "x")
        XCTAssertEqual(input.dtype, "f32")
        XCTAssertEqual(input.dimensions.map(\.0), [.symbol("N"), .extent(3), .extent(224), .extent(224)])
        XCTAssertEqual(input.layout?.0, "nchw")
        XCTAssertEqual(input.preprocess?.0, "torch")
        XCTAssertEqual(input.preprocess?.1, at(1, 47))
    }

    func testLayerWithPositionalAndLabelledArguments() throws {
        guard case .invocation(let layer) = try parse("frozen c1 = conv2d(x, 64, (3, 3), padding: same)")[0] else {
            return XCTFail("not a layer")
        }
        XCTAssertTrue(layer.frozen)
        XCTAssertEqual(layer.resultName?.kind, .word("c1"))
        XCTAssertEqual(layer.location, at(1, 8))
        XCTAssertEqual(layer.callee, "conv2d")
        XCTAssertEqual(layer.arguments.map(\.label), [nil, nil, nil, "padding"])
        XCTAssertEqual(layer.arguments[2].value.kind, .list([Expression(kind: .integer(3), location: at(1, 28)),
                                                             Expression(kind: .integer(3), location: at(1, 31))]))
        XCTAssertEqual(layer.arguments[3].value.kind, .word("same"))
    }

    func testKeywordsAreOrdinaryNamesInLayerPosition() throws {
        let statements = try parse("input = relu(x)\ndense = dense(256)\noutput = softmax()")
        for statement in statements {
            guard case .invocation = statement else { return XCTFail("\(statement) is not a layer") }
        }
    }

    func testBlockAndRepeat() throws {
        let source = """
        block vgg_block(name, filters, convs) {
            repeat i in 1..convs {
                "{name}_conv{i}" = conv2d(filters, 3)
            }
            "{name}_pool" = max_pool2d()
        }
        vgg_block(block1, 64, 2)
        """
        let statements = try parse(source)
        guard case .block(let block) = statements[0], case .repeatLoop(let loop) = block.body[0] else {
            return XCTFail("not a block with a loop")
        }
        XCTAssertEqual(block.name, "vgg_block")
        XCTAssertEqual(block.parameters.map(\.0), ["name", "filters", "convs"])
        XCTAssertEqual(block.body.count, 2)
        XCTAssertEqual(loop.variable, "i")
        XCTAssertEqual(loop.to.kind, .word("convs"))
        guard case .invocation(let call) = statements[1] else { return XCTFail("not a call") }
        XCTAssertNil(call.resultName)
        XCTAssertEqual(call.callee, "vgg_block")
    }

    func testSemicolonsSeparateStatements() throws {
        XCTAssertEqual(try parse("a = relu(); b = relu()").count, 2)
    }

    func testTwoStatementsOnOneLineAreAnError() {
        XCTAssertThrowsError(try parse("a = relu() b = relu()")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, "t.keel:1:12: error: expected end of line after statement, found 'b'")
        }
    }

    func testBlocksCannotNest() {
        XCTAssertThrowsError(try parse("block a() {\n  block b() {}\n}")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline,
                           "t.keel:2:3: error: blocks are defined at the top level of a file, not inside another block or loop")
        }
    }
}
