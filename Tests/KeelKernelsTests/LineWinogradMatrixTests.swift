/// The SIMD kernels' constant copies of the F(4, k) matrices (line_matrices.h) are the ones
/// `LineWinogradTransforms` builds, so every line and 5×5 layer runs the bodies built for them; and
/// those bodies give the generic body's bits on awkward channel counts, bias and ReLU included.
@testable import KeelKernels
import CSIMDKernels
import XCTest

final class LineWinogradMatrixTests: XCTestCase {
    func testKernelsHoldEveryTransformMatrix() throws {
        for taps in [3, 5, 7] {
            let transforms = try XCTUnwrap(LineWinogradTransforms.forTaps(taps))
            XCTAssertNotEqual(transforms.inputKind, Int32(KEEL_LINE_GENERIC), "F(4, \(taps)) Bᵀ")
            XCTAssertNotEqual(transforms.outputKind, Int32(KEEL_LINE_GENERIC), "F(4, \(taps)) Aᵀ")
        }
    }

    func testConstantBodiesMatchTheGenericOne() throws {
        for taps in [3, 5, 7] {
            let transforms = try XCTUnwrap(LineWinogradTransforms.forTaps(taps))
            let points = transforms.points
            for channels in [1, 7, 16, 37] {
                let source = seededValues(points * channels, seed: UInt64(900 + taps * 10 + channels))
                let bias = seededValues(channels, seed: UInt64(950 + channels))
                try forEachCapabilitySet { level in
                    // Bᵀ over all n rows; Aᵀ storing 3 of its 4 rows, with bias and ReLU.
                    for (matrix, kind, rows, withBias) in [(transforms.input, transforms.inputKind, points, false),
                                                           (transforms.output, transforms.outputKind, 3, true)] {
                        func run(_ kind: Int32) -> [Float] {
                            var destination = [Float](repeating: .nan, count: rows * channels)
                            source.withUnsafeBufferPointer { source in
                                matrix.withUnsafeBufferPointer { matrix in
                                    bias.withUnsafeBufferPointer { bias in
                                        destination.withUnsafeMutableBufferPointer { destination in
                                            LineWinograd.transform(source.baseAddress!, stride: channels, channels: channels,
                                                                   matrix: matrix.baseAddress!, rows: rows, columns: points,
                                                                   kind: kind, bias: withBias ? bias.baseAddress : nil,
                                                                   relu: withBias, destination: destination.baseAddress!,
                                                                   destinationStride: channels)
                                        }
                                    }
                                }
                            }
                            return destination
                        }
                        let generic = run(Int32(KEEL_LINE_GENERIC)), constant = run(kind)
                        XCTAssertEqual(generic.map(\.bitPattern), constant.map(\.bitPattern),
                                       "F(4, \(taps)), kind \(kind), \(channels) channels, \(level)")
                    }
                }
            }
        }
    }
}
