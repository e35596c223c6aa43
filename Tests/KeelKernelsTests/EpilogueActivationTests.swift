/// The C epilogue's GELU (simd_activation.h) at every SIMD level with a GEMM body, through a
/// 1-deep product (C = 1·B, so C is the activation of B), against x·Φ(x) computed here in double
/// precision from erfc (exact where Φ is tiny) and against the tanh formula.
@testable import KeelKernels
import CSIMDKernels
import Foundation
import XCTest

final class EpilogueActivationTests: XCTestCase {
    /// The epilogue of `activation` over `values` (nil at a level without a GEMM body).
    func activated(_ values: [Float], _ activation: UnaryOperation) -> [Float]? {
        var one: Float = 1
        var output = [Float](repeating: .nan, count: values.count)
        let ran = values.withUnsafeBufferPointer { b in
            output.withUnsafeMutableBufferPointer { c in
                withUnsafePointer(to: &one) { a in
                    PanelGEMM.multiply(m: 1, n: values.count, k: 1,
                                       left: keel_gemm_left(base: a, row_step: 1, depth_step: 1, block_rows: 0, block_step: 0),
                                       right: PanelGEMM.rowMajorRight(b.baseAddress, depthStep: values.count),
                                       c: c.baseAddress!, ldc: values.count,
                                       epilogue: KernelEpilogue(bias: nil, residual: nil, activation: activation),
                                       biasPerRow: false, residualStride: 0, context: .singleThreaded)
                }
            }
        }
        return ran ? output : nil
    }

    var samples: [Float] {
        (0...4800).map { Float(-12 + Double($0) * 0.005) } + [0, -0.0, 1e-20, -1e-20, 1e-3, -1e-3, 20, -20, 100, -100]
    }

    /// Within a millionth of the exact value, and within 2e-7·|x| where Φ(x) is tiny: the form
    /// 0.5·x·(1 + erf(x/√2)) that ONNX Runtime computes is accurate in Φ to a few fp32 ulps of 1,
    /// not in relative terms (GELU(−5) = −1.4e-6 is off by up to 9e-7).
    func testGeluMatchesTheExactValue() {
        forEachCapabilitySet { level in
            guard let actual = activated(samples, .gelu) else { return }
            for (x, got) in zip(samples, actual) {
                let value = Double(x)
                let exact = 0.5 * value * erfc(-value / 2.0.squareRoot())
                let bound = 1e-6 * abs(exact) + 2e-7 * abs(value) + 1e-40
                XCTAssertLessThanOrEqual(abs(Double(got) - exact), bound, "\(level) gelu(\(x)) = \(got), exact \(exact)")
            }
        }
    }

    /// Past |x| ≈ 5.8 erf is ±1 in fp32: GELU is x itself above and exactly zero below, not a
    /// rounding residue of x (an erf of 1 − 6e-8 at the clamp left 3e-7·|x|).
    func testGeluSaturatesExactly() {
        let large: [Float] = [5.9, 6, 9.5, 12, 1e6, 3e38]
        forEachCapabilitySet { level in
            guard let actual = activated(large + large.map { -$0 }, .gelu) else { return }
            for (x, got) in zip(large, actual) { XCTAssertEqual(got, x, "\(level) gelu(\(x))") }
            for (x, got) in zip(large, actual.dropFirst(large.count)) { XCTAssertEqual(got, 0, "\(level) gelu(-\(x))") }
        }
    }

    func testGeluTanhMatchesItsFormula() {
        forEachCapabilitySet { level in
            guard let actual = activated(samples, .geluTanh) else { return }
            for (x, got) in zip(samples, actual) {
                let value = Double(x)
                // 0.5·(1 + tanh(y)) = 1/(1 + e^(−2y)), which stays exact in double where tanh(y) ≈ −1.
                let y = (2 / Double.pi).squareRoot() * (value + 0.044715 * value * value * value)
                let exact = value / (1 + exp(-2 * y))
                // The cubic's rounding leaves a few parts in a million where the value is tiny anyway.
                let bound = 2e-6 * abs(exact) + 1e-9
                XCTAssertLessThanOrEqual(abs(Double(got) - exact), bound, "\(level) gelu_tanh(\(x)) = \(got), exact \(exact)")
            }
        }
    }

    /// The limits: GELU(+inf) = +inf; GELU(−inf) is NaN, as ONNX Runtime gives; large finite ±x.
    func testGeluOfInfinities() {
        forEachCapabilitySet { level in
            guard let actual = activated([.infinity, -.infinity, 25, -25], .gelu) else { return }
            XCTAssertEqual(actual[0], .infinity, "\(level)")
            // ONNX Runtime's 0.5·x·(1 + erf(x/√2)) at −inf is −inf·0: NaN (NonFiniteConformanceTests).
            XCTAssertTrue(actual[1].isNaN, "\(level)")
            XCTAssertEqual(actual[2], 25, "\(level)")
            XCTAssertEqual(actual[3], 0, "\(level)")
        }
    }

    func testGeluPropagatesNaN() {
        forEachCapabilitySet { level in
            guard let actual = activated([.nan, 1], .gelu) else { return }
            XCTAssertTrue(actual[0].isNaN, "\(level)")
        }
    }

    /// A NaN stays NaN through every fused activation, as through ONNX Runtime's: the clamps once
    /// took max(x, 0) in the operand order that returns 0 for a NaN x.
    func testEveryFusedActivationKeepsNaN() {
        let activations: [UnaryOperation] = [.relu, .clip(min: 0, max: 6), .leakyRelu(alpha: 0.1), .sigmoid, .swish,
                                             .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .tanh, .gelu, .geluTanh]
        forEachCapabilitySet { level in
            for activation in activations {
                guard let actual = activated([.nan, -.nan, 2, -2], activation) else { return }
                XCTAssertTrue(actual[0].isNaN && actual[1].isNaN, "\(level) \(activation): \(actual)")
                XCTAssertFalse(actual[2].isNaN || actual[3].isNaN, "\(level) \(activation): \(actual)")
            }
        }
    }
}
