import XCTest
import KeelIR
@testable import KeelFormat

/// Block, loop, include and sequential-input expansion, checked on the flat model.
final class ExpansionTests: XCTestCase {
    private func expand(_ source: String, files: [String: String] = [:]) throws -> FlatModel {
        let file = try Parser.parse(source: source, path: "dir/root.keel")
        return try Expander.expand(file) { path in
            guard let text = files[path] else { throw Diagnostic("no file \(path)") }
            return text
        }
    }

    func testRepeatAndInterpolationNameLayers() throws {
        let model = try expand("""
        model m
        input x: f32[N, 32, 32, 3]
        block stage(name, filters, convs) {
            repeat i in 1..convs {
                "{name}_conv{i}" = conv2d(filters, 3)
            }
            "{name}_pool" = max_pool2d()
        }
        stage(b1, 8, 2)
        stage("b2", 16, 1)
        """)
        XCTAssertEqual(model.layers.map(\.name), ["b1_conv1", "b1_conv2", "b1_pool", "b2_conv1", "b2_pool"])
        XCTAssertEqual(model.layers.map { $0.inputs.map(\.name) },
                       [["x"], ["b1_conv1"], ["b1_conv2"], ["b1_pool"], ["b2_conv1"]])
        XCTAssertEqual(model.layers[3].arguments[0].value.kind, .integer(16))
        XCTAssertEqual(model.layers[0].location, SourceLocation(file: "dir/root.keel", line: 5, column: 9))
        XCTAssertEqual(model.layers[3].callSites, [CallSite(block: "stage", location: SourceLocation(file: "dir/root.keel", line: 10, column: 1))])
    }

    func testBlockParametersCanNameInputs() throws {
        let model = try expand("""
        model m
        input a: f32[N, 8]
        input b: f32[N, 8]
        block head(features, prefix) {
            "{prefix}_fc" = dense(features, 4)
        }
        head(a, left)
        head(b, right)
        """)
        XCTAssertEqual(model.layers.map(\.name), ["left_fc", "right_fc"])
        XCTAssertEqual(model.layers.map { $0.inputs.map(\.name) }, [["a"], ["b"]])
        XCTAssertEqual(model.layers.map(\.implicitInput), [false, false])
    }

    func testFrozenPropagatesThroughIncludesAndBlocks() throws {
        let model = try expand("""
        model m
        frozen include "base.keel"
        include "lib.keel"
        frozen head()
        tail = relu()
        """, files: [
            "dir/base.keel": "model base\ninput x: f32[N, 8]\nbase_fc = dense(8)\noutput base_fc",
            "dir/lib.keel": "block head() {\n  head_fc = dense(8)\n}",
        ])
        XCTAssertEqual(model.name, "m")
        XCTAssertEqual(model.layers.map(\.name), ["base_fc", "head_fc", "tail"])
        XCTAssertEqual(model.layers.map(\.frozen), [true, true, false])
        XCTAssertEqual(model.layers[2].inputs.map(\.name), ["head_fc"])
        XCTAssertTrue(model.outputs.isEmpty, "outputs of included files are not the model's")
        XCTAssertEqual(model.inputs.first?.location, SourceLocation(file: "dir/base.keel", line: 2, column: 7))
    }

    func testAFileIncludedTwiceIsSplicedOnce() throws {
        let model = try expand("""
        model m
        include "lib.keel"
        include "./lib.keel"
        input x: f32[N, 8]
        one()
        """, files: ["dir/lib.keel": "block one() {\n  fc = dense(8)\n}"])
        XCTAssertEqual(model.layers.map(\.name), ["fc"])
    }

    func testIncludePathsResolveAgainstTheIncludingFile() {
        XCTAssertEqual(Expander.resolve("vgg16.keel", relativeTo: "graphs/head.keel"), "graphs/vgg16.keel")
        XCTAssertEqual(Expander.resolve("vgg16.keel", relativeTo: "head.keel"), "vgg16.keel")
        XCTAssertEqual(Expander.resolve("/abs/x.keel", relativeTo: "graphs/head.keel"), "/abs/x.keel")
        XCTAssertEqual(Expander.normalizedPath("a/./b/../c.keel"), "a/c.keel")
        XCTAssertEqual(Expander.normalizedPath("/a/b/../../c.keel"), "/c.keel")
    }

    func testInputLayoutsAndPresets() throws {
        let model = try expand("""
        model m
        input image: f32[N, 3, 224, 224] nchw preprocess: torch
        input tokens: i64[N, 49]
        input photo: float32[1, 224, 224, 3]
        """)
        XCTAssertEqual(model.inputs.map(\.layout), [.nchw, nil, .nhwc])
        XCTAssertEqual(model.inputs.map(\.preprocess), ["torch", nil, nil])
        XCTAssertEqual(model.inputs[0].type, TensorType(.float32, ["N", 3, 224, 224]))
        XCTAssertEqual(model.inputs[1].type, TensorType(.int64, ["N", 49]))
        XCTAssertEqual(model.inputs[2].type, TensorType(.float32, [1, 224, 224, 3]))
    }

    func testEmptyLoopRangeExpandsToNothing() throws {
        let model = try expand("model m\ninput x: f32[N, 8]\nrepeat i in 3..2 {\n  \"fc{i}\" = dense(8)\n}")
        XCTAssertTrue(model.layers.isEmpty)
    }
}
