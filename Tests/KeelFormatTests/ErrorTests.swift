import XCTest
import KeelIR
@testable import KeelFormat

/// Every malformed file under Fixtures/errors fails with an exact, located headline (and the
/// notes that explain it), never a crash.
final class ErrorTests: XCTestCase {
    /// File name -> the first line of the diagnostic, with the fixtures directory dropped from paths.
    static let expectedHeadlines: [String: String] = [
        "unterminated_string.keel": "unterminated_string.keel:3:1: error: unterminated string",
        "unterminated_block.keel": "unterminated_block.keel:3:19: error: unterminated block: missing '}'",
        "unclosed_parenthesis.keel": "unclosed_parenthesis.keel:3:14: error: unterminated argument list: missing ')'",
        "unexpected_character.keel": "unexpected_character.keel:3:13: error: unexpected character '$'",
        "missing_equals.keel": "missing_equals.keel:3:8: error: expected '=' or '(' after 'hidden', found 'dense'",
        "missing_model.keel": "missing_model.keel:1:1: error: missing 'model NAME' header",
        "unknown_layer_type.keel": "unknown_layer_type.keel:3:8: error: unknown layer type 'conv2'; did you mean 'conv2d'?",
        "keras_class_name.keel": "keras_class_name.keel:3:6: error: unknown layer type 'BatchNormalization'; did you mean 'batch_norm'?",
        "keras_activation_layer.keel": "keras_activation_layer.keel:3:7: error: unknown layer type 'Activation'; write the activation as its own layer, e.g. 'NAME = relu()'",
        "dropout_rate.keel": "dropout_rate.keel:3:1: error: dropout 'drop' needs a rate in [0, 1), got 1.5",
        "unknown_attribute.keel": "unknown_attribute.keel:3:28: error: conv2d has no attribute 'kernal_size'; did you mean 'kernel_size'?",
        "wrong_value_type.keel": "wrong_value_type.keel:3:24: error: attribute 'filters' of conv2d 'conv' expects an integer, got \"16\"",
        "bad_padding_choice.keel": "bad_padding_choice.keel:3:31: error: attribute 'padding' of conv2d 'conv' expects one of valid, same, got 'sme'; did you mean 'same'?",
        "conv_activation_unfusable.keel": "conv_activation_unfusable.keel:3:34: error: attribute 'activation' of conv2d 'conv' expects one of linear, none, relu, sigmoid, tanh, swish, hard_swish, gelu, gelu_tanh, got 'softmax'; softmax cannot be fused here: add a separate layer 'NAME = softmax()' after it",
        "zero_kernel.keel": "zero_kernel.keel:3:32: error: attribute 'kernel_size' of conv2d 'conv' must be positive, got [0,3]",
        "missing_units.keel": "missing_units.keel:3:1: error: dense 'fc' needs attribute 'units' (an integer)",
        "bad_reshape_target.keel": "bad_reshape_target.keel:3:1: error: reshape 'tokens' has target_shape [0,768]: entries must be positive, with at most one -1",
        "too_many_inputs.keel": "too_many_inputs.keel:4:1: error: relu 'r' takes 1 input but is given 2",
        "undefined_name.keel": "undefined_name.keel:4:17: error: undefined name 'rihgt'; did you mean 'right'?",
        "undefined_output.keel": "undefined_output.keel:4:17: error: output 'logits' reads undefined name 'dense_1'",
        "duplicate_name.keel": "duplicate_name.keel:4:1: error: duplicate name 'fc'",
        "duplicate_output.keel": "duplicate_output.keel:5:1: error: duplicate output 'out'",
        "cycle.keel": "cycle.keel:3:1: error: layers form a cycle: a -> b -> a",
        "layer_before_input.keel": "layer_before_input.keel:2:1: error: layer 'y' has no input: declare an 'input' first or name the layer's input",
        "unnamed_layer.keel": "unnamed_layer.keel:3:1: error: layer 'relu(...)' needs a name: write 'NAME = relu(...)'",
        "include_cycle_a.keel": "include_cycle_b.keel:2:1: error: include cycle: include_cycle_a.keel -> include_cycle_b.keel -> include_cycle_a.keel",
        "missing_include.keel": "missing_include.keel:2:1: error: cannot read included file 'nowhere.keel' (looked for nowhere.keel)",
        "zero_dimension.keel": "zero_dimension.keel:2:22: error: bad dimension 0: extents must be positive",
        "fractional_dimension.keel": "fractional_dimension.keel:2:22: error: bad dimension '22.5': write a positive integer or a symbol such as N",
        "unknown_dtype.keel": "unknown_dtype.keel:2:15: error: unknown element type 'f23'; did you mean 'f32'?",
        "bad_layout.keel": "bad_layout.keel:2:35: error: unknown input option 'nwhc'; expected a layout (nhwc or nchw) or 'preprocess:'; did you mean 'nhwc'?",
        "block_missing_argument.keel": "block_missing_argument.keel:8:1: error: block 'stage' needs argument 'convs'",
        "block_unknown_parameter.keel": "block_unknown_parameter.keel:6:17: error: block 'stage' has no parameter 'filter'; did you mean 'filters'?",
        "block_recursion.keel": "block_recursion.keel:4:5: error: block 'tower' calls itself",
        "unknown_interpolation.keel": "unknown_interpolation.keel:4:7: error: unknown name 'prefx' in string; did you mean 'prefix'?",
        "conv_on_vector.keel": "conv_on_vector.keel:3:1: error: conv2d 'conv' expects a rank-4 nhwc image but its input 'features' is [N,512]",
        "dense_symbolic_features.keel": "dense_symbolic_features.keel:3:1: error: dense 'fc' needs a known feature count on the last axis but its input 'x' is [N,F]",
        "add_shape_mismatch.keel": "add_shape_mismatch.keel:5:1: error: add 'sum' cannot broadcast input 'conv' [N,32,32,16] with input 'pool' [N,16,16,16]",
        "reshape_indivisible.keel": "reshape_indivisible.keel:3:1: error: reshape 'tokens' cannot infer -1 in shape [0,-1,1000] from input 'images' [N,7,7,512]: 25,088 elements per N do not divide into 1,000",
        "pool_too_large.keel": "pool_too_large.keel:3:1: error: max_pool2d 'pool' 8×8 window does not fit input 'images' [N,4,4,3] with valid padding: extent 4 is smaller than the kernel's 8",
        "dense_fed_image.keel": "dense_fed_image.keel:4:1: error: dense 'fc' expects 25,088 input features on the last axis but its input 'pool' is [N,7,7,512]",
        "python_keyword_argument.keel": "python_keyword_argument.keel:3:12: error: arguments are labelled with ':' in .keel files; did you mean 'units: 5'?",
        "single_quoted_string.keel": "single_quoted_string.keel:3:27: error: strings take double quotes in .keel files; did you mean \"softmax\"?",
        "dense_from_larger_image.keel": "dense_from_larger_image.keel:16:1: error: dense 'dense' expects 25,088 input features on the last axis but its input 'flatten' is [N,32768]",
    ]

    /// Loads a fixture and returns its diagnostic with the fixtures directory dropped from paths.
    private func diagnostic(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        let directory = TestPaths.fixture("errors") + "/"
        do {
            _ = try loadKeelGraph(path: directory + name)
            XCTFail("\(name) loaded without an error", file: file, line: line)
            return nil
        } catch let diagnostic as Diagnostic {
            return diagnostic.description.replacingOccurrences(of: directory, with: "")
        } catch {
            XCTFail("\(name) threw \(error), not a Diagnostic", file: file, line: line)
            return nil
        }
    }

    func testEveryFixtureFailsWithItsHeadline() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: TestPaths.fixture("errors"))
            .filter { $0.hasSuffix(".keel") && $0 != "include_cycle_b.keel" }
        XCTAssertGreaterThanOrEqual(files.count, 25)
        XCTAssertEqual(Set(files), Set(Self.expectedHeadlines.keys), "every fixture has an expected headline")
        for name in files.sorted() {
            guard let text = diagnostic(name) else { continue }
            XCTAssertEqual(text.split(separator: "\n").first.map(String.init), Self.expectedHeadlines[name], name)
        }
    }

    func testDenseFedAnImageSuggestsFlatten() {
        XCTAssertEqual(diagnostic("dense_fed_image.keel")?.split(separator: "\n").dropFirst().map(String.init), [
            "dense_fed_image.keel:4:1: note: 'fc' pins its kernel to 25,088 input features with input_dim, but a dense layer reads only the last axis of [N,7,7,512]; add a flatten layer before it (flattening gives exactly 25,088)",
        ])
    }

    func testPinnedDenseExplainsTheInputSizeItWasBuiltFor() {
        // 25,088 = 7·7·512; five 2×2 pools reduce 224 to 7 but 256 to 8.
        XCTAssertEqual(diagnostic("dense_from_larger_image.keel")?.split(separator: "\n").dropFirst().map(String.init), [
            "dense_from_larger_image.keel:3:7: note: 25,088 = 7·7·512 comes from a 224×224 input; 'images' is 256×256, so 's5_pool' is 8×8·512 = 32,768",
        ])
    }

    func testInputSizeIsDerivedThroughPaddingAndStridedConvolutions() {
        // A ResNet50-style stem: pad 3, 7×7/2 valid conv, pad 1, 3×3/2 max pool: 224 -> 56.
        let source = """
        model stem
        input images: f32[N, 256, 256, 3]
        conv1_pad = zero_padding2d(3)
        conv1 = conv2d(64, 7, strides: 2)
        pool1_pad = zero_padding2d((1, 1))
        pool1 = max_pool2d(3, strides: 2)
        flatten = flatten()
        fc = dense(10, input_dim: 200704)
        """
        XCTAssertThrowsError(try parseKeelGraph(source: source, path: "stem.keel")) { error in
            XCTAssertEqual("\(error)", """
            stem.keel:8:1: error: dense 'fc' expects 200,704 input features on the last axis but its input 'flatten' is [N,262144]
            stem.keel:2:7: note: 200,704 = 56·56·64 comes from a 224×224 input; 'images' is 256×256, so 'pool1' is 64×64·64 = 262,144
            """)
        }
    }

    func testMergeErrorsSayWhereEachInputWasMade() {
        XCTAssertEqual(diagnostic("add_shape_mismatch.keel")?.split(separator: "\n").dropFirst().map(String.init), [
            "add_shape_mismatch.keel:3:1: note: 'conv' is [N,32,32,16], made here",
            "add_shape_mismatch.keel:4:1: note: 'pool' is [N,16,16,16], made here",
        ])
    }

    func testNotesPointAtDefinitionsAndCallSites() {
        XCTAssertEqual(diagnostic("duplicate_name.keel")?.split(separator: "\n").last, "duplicate_name.keel:3:1: note: 'fc' is first defined here")
        XCTAssertEqual(diagnostic("block_missing_argument.keel")?.split(separator: "\n").last, "block_missing_argument.keel:3:7: note: block 'stage' is defined here")
        XCTAssertEqual(diagnostic("unknown_interpolation.keel")?.split(separator: "\n").last, "unknown_interpolation.keel:6:1: note: in block 'stage' called here")
        XCTAssertEqual(diagnostic("block_recursion.keel")?.split(separator: "\n").last, "block_recursion.keel:6:1: note: in block 'tower' called here")
    }

    func testResNetHeadOnA256Input() throws {
        // The seed's resnet head reused on 256×256 images: the pinned dense names the 224×224 origin.
        let source = """
        model m
        include "vgg_body.keel"
        include "\(TestPaths.graph("heads.keel"))"
        resnet_head(block5_pool)
        """
        let body = try String(contentsOfFile: TestPaths.graph("vgg16.keel"), encoding: .utf8)
            .replacingOccurrences(of: "f32[N, 224, 224, 3]", with: "f32[N, 256, 256, 3]")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keel-format-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try body.write(to: directory.appendingPathComponent("vgg_body.keel"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try parseKeelGraph(source: source, path: directory.appendingPathComponent("head.keel").path,
                                                confinement: PathConfinement(allowing: [TestPaths.graphs.path]))) { error in
            let text = "\(error)".replacingOccurrences(of: directory.path + "/", with: "")
                .replacingOccurrences(of: TestPaths.graphs.path + "/", with: "")
            XCTAssertEqual(text, """
            heads.keel:8:5: error: dense 'dense' expects 25,088 input features on the last axis but its input 'flatten' is [N,32768]
            vgg_body.keel:6:7: note: 25,088 = 7·7·512 comes from a 224×224 input; 'input_1' is 256×256, so 'block5_pool' is 8×8·512 = 32,768
            head.keel:4:1: note: in block 'resnet_head' called here
            """)
        }
    }
}

/// Hostile or absurd sources fail with a diagnostic instead of trapping or running away.
final class RobustnessTests: XCTestCase {
    private func headline(_ source: String) -> String? {
        do {
            _ = try parseKeelGraph(source: source, path: "r.keel")
            return nil
        } catch {
            return (error as? Diagnostic)?.headline ?? "not a Diagnostic: \(error)"
        }
    }

    func testHugeIntegersAreRejected() {
        XCTAssertEqual(headline("model m\ninput x: f32[N, 99999999999999999999]"),
                       "r.keel:2:17: error: integer '99999999999999999999' is too large (at most 2,147,483,648)")
    }

    func testHugeParametersAreRejected() {
        XCTAssertEqual(headline("model m\ninput x: f32[N, 2000000000]\nfc = dense(2000000000)"),
                       "r.keel:3:1: error: dense 'fc' would need a kernel of shape [2000000000,2000000000], more than 17,179,869,184 elements")
    }

    func testDeepNestingIsBounded() {
        let source = "model m\ninput x: f32[N, 8]\ny = reshape(" + String(repeating: "(", count: 100) + String(repeating: ")", count: 100) + ")"
        XCTAssertEqual(headline(source), "r.keel:3:77: error: nesting is deeper than 64 levels")
    }

    func testRunawayLoopsAreBounded() {
        let source = "model m\ninput x: f32[N, 8]\nrepeat i in 1..1000 {\n repeat j in 1..1000 {\n  \"r{i}_{j}\" = relu()\n }\n}"
        XCTAssertEqual(headline(source), "r.keel:5:3: error: the model expands to more than 100,000 layers")
    }

    func testEmptyAndCommentOnlySources() {
        XCTAssertEqual(headline(""), "r.keel:1:1: error: missing 'model NAME' header")
        XCTAssertEqual(headline("# nothing\n"), "r.keel:1:1: error: missing 'model NAME' header")
    }
}

extension RobustnessTests {
    /// Every prefix of a real graph, and the graph with each single character deleted, either
    /// loads or throws a Diagnostic: no traps on half-written files.
    func testTruncatedAndDamagedSourcesNeverTrap() throws {
        let source = try String(contentsOfFile: TestPaths.graph("vgg16.keel"), encoding: .utf8)
        let characters = Array(source)
        for cut in stride(from: 0, to: characters.count, by: 3) {
            for variant in [String(characters[..<cut]), String(characters[..<cut] + characters[(cut + 1)...])] {
                do {
                    _ = try parseKeelGraph(source: variant, path: "r.keel")
                } catch is Diagnostic {
                } catch {
                    XCTFail("cut \(cut) threw \(error)")
                }
            }
        }
    }
}
