import KeelRuntime

/// One class of a classifier's output row, ranked by score.
public struct RankedClass: Equatable, Sendable, Encodable {
    /// The class's position on the output's last axis.
    public var index: Int
    /// Its name from the labels, or "class INDEX" without labels (or for an empty label).
    public var label: String
    public var score: Float
}

public struct TopKError: Error, CustomStringConvertible {
    public var description: String
}

extension Tensor {
    /// The `k` best classes of each row of a [batch, classes] output (scores descending, ties by
    /// index), named by `labels` when given; `labels` must name every class, so a short labels
    /// file is an error rather than "class 4".
    public func topK(_ k: Int, labels: [String]? = nil) throws -> [[RankedClass]] {
        guard shape.count == 2 else {
            throw TopKError(description: "top classes need a [batch, classes] output; this one is \(Shape(known: shape))")
        }
        guard k >= 1 else { throw TopKError(description: "top-k needs k of at least 1, got \(k)") }
        let (rows, classes) = (shape[0], shape[1])
        if let labels, labels.count != classes {
            throw TopKError(description: "\(labels.count) labels for \(classes) classes")
        }
        return (0..<rows).map { row in
            let scores = Array(values[(row * classes)..<((row + 1) * classes)])
            let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            return order.prefix(k).map { index in
                let name = labels?[index] ?? ""
                return RankedClass(index: index, label: name.isEmpty ? "class \(index)" : name, score: scores[index])
            }
        }
    }
}
