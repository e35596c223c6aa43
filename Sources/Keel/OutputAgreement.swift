import Foundation
import KeelRuntime

/// How closely one run's outputs follow a reference run's on the same inputs (bf16 against fp32:
/// `keel bench --precision bf16 --compare fp32`). Samples are the first axis.
public struct OutputAgreement: Sendable, Equatable {
    public var output: String
    /// max |candidate − reference| over every element.
    public var maxAbsoluteDifference: Double
    /// maxAbsoluteDifference over max |reference|: the error relative to the output's range.
    public var maxRelativeDifference: Double
    /// The lowest, over samples, cosine similarity of a sample's candidate and reference values.
    public var minimumCosine: Double
    /// Samples whose largest value sits at the same position in both (top-1 for a classifier).
    public var top1Agreements: Int
    public var samples: Int

    /// One entry per output the two runs share, in name order.
    public static func compare(_ candidate: [String: Tensor], reference: [String: Tensor]) -> [OutputAgreement] {
        reference.keys.sorted().compactMap { name in
            guard let expected = reference[name], let actual = candidate[name], expected.shape == actual.shape else { return nil }
            return OutputAgreement(output: name, candidate: actual, reference: expected)
        }
    }

    init(output: String, candidate: Tensor, reference: Tensor) {
        self.output = output
        let (a, b) = (candidate.values, reference.values)
        var largestDifference = 0.0, range = 0.0
        for index in b.indices {
            largestDifference = max(largestDifference, abs(Double(a[index]) - Double(b[index])))
            range = max(range, abs(Double(b[index])))
        }
        maxAbsoluteDifference = largestDifference
        maxRelativeDifference = range > 0 ? largestDifference / range : largestDifference
        samples = max(1, reference.shape.first ?? 1)
        let width = b.isEmpty ? 0 : b.count / samples
        var lowest = 1.0, agreeing = 0
        for sample in 0..<samples where width > 0 {
            let span = (sample * width)..<((sample + 1) * width)
            var dot = 0.0, normA = 0.0, normB = 0.0
            var (bestA, bestB) = (span.lowerBound, span.lowerBound)
            for index in span {
                let (x, y) = (Double(a[index]), Double(b[index]))
                dot += x * y
                normA += x * x
                normB += y * y
                if a[index] > a[bestA] { bestA = index }
                if b[index] > b[bestB] { bestB = index }
            }
            let cosine = normA > 0 && normB > 0 ? dot / (normA.squareRoot() * normB.squareRoot()) : (normA == normB ? 1 : 0)
            lowest = min(lowest, cosine)
            if bestA == bestB { agreeing += 1 }
        }
        minimumCosine = lowest
        top1Agreements = agreeing
    }

    /// "block5_pool: max abs 0.0123, max rel 0.0041, cosine ≥ 0.99991, top-1 8/8".
    public var summary: String {
        String(format: "%@: max abs %.4g, max rel %.4g, min cosine %.6f, top-1 %d/%d", output, maxAbsoluteDifference,
               maxRelativeDifference, minimumCosine, top1Agreements, samples)
    }
}
