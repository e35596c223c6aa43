import Keel
import XCTest

/// The README's embedding example, kept compiling and true.
final class PublicAPITests: XCTestCase {
    func testReadmeExample() throws {
        let path = repository.appendingPathComponent("graphs/vgg16_vit_head.keel").path

        // Load, check every shape, bind seeded weights, compile.
        let (model, report) = try ModelPipeline(path: path, weights: .seeded(42), threads: 2).compile()
        XCTAssertEqual(model.inputNames, ["input_1"])
        XCTAssertGreaterThan(report.seededParameters, 0)

        // Run a batch of one 224×224 RGB image (NHWC, as Keras).
        let image = try Tensor(shape: [1, 224, 224, 3], values: [Float](repeating: 0.5, count: 224 * 224 * 3))
        let outputs = try model.run(["input_1": image])
        XCTAssertEqual(outputs["tokens"]?.shape, [1, 49, 768])

        // LayerNorm over 768 features with gamma 1, beta 0: every token has mean 0 and variance
        // v / (v + epsilon) for its pre-normalisation variance v, so between 0 and 1.
        let token = try XCTUnwrap(outputs["tokens"]).values[0..<768]
        let mean = token.reduce(0, +) / 768
        let variance = token.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 768
        XCTAssertEqual(mean, 0, accuracy: 1e-4)
        XCTAssertGreaterThan(variance, 0)
        XCTAssertLessThanOrEqual(variance, 1)
    }

    /// Scores chosen by hand: row 0 ranks classes 2, 0, 1; row 1 has a tie broken by index.
    func testTopKRanksEachRowAndNamesClasses() throws {
        let scores = try Tensor(shape: [2, 3], values: [0.2, 0.1, 0.7, 0.5, 0.5, 0.0])
        let named = try scores.topK(2, labels: ["cat", "dog", "bird"])
        XCTAssertEqual(named[0].map(\.label), ["bird", "cat"])
        XCTAssertEqual(named[0].map(\.score), [0.7, 0.2])
        XCTAssertEqual(named[1].map(\.index), [0, 1])
        XCTAssertEqual(try scores.topK(1)[0].first?.label, "class 2")
        XCTAssertThrowsError(try scores.topK(1, labels: ["cat", "dog"])) { error in
            XCTAssertEqual(String(describing: error), "2 labels for 3 classes")
        }
        XCTAssertThrowsError(try Tensor(zeros: [1, 2, 2]).topK(1))
    }
}
