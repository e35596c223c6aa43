/// How a .keelc was made (format version 4), so running it says what running its source would
/// (seeded-random weights) and flags that would have made a different file are refused, not
/// silently ignored.
public struct ArtifactProvenance: Codable, Sendable, Equatable {
    /// Where a layer name of the source can be cut in the compiled graph: the compiled value
    /// that holds exactly that layer's output, or why none does (fused into a later step).
    public struct CutPoint: Codable, Sendable, Equatable {
        public var value: String?
        public var unavailable: String?

        public init(value: String) {
            self.value = value
            unavailable = nil
        }

        public init(unavailable reason: String) {
            value = nil
            unavailable = reason
        }
    }

    /// The model file compiled (.keel or .onnx), as given to `keel compile`.
    public var source: String
    /// The ONNX file bound with --weights, and how (name or order); nil when none was.
    public var weights: String?
    public var match: String?
    /// The seed of the parameters that got seeded-random values, and how many did (0: none).
    public var seed: UInt64?
    public var seededParameters: Int
    /// "-O0", "-O1" or "-O2"; nil when --passes chose the passes.
    public var optimization: String?
    public var passes: [String]?
    /// The arithmetic the kernels were prepared for: "fp32".
    public var precision: String
    /// Every layer name of the source (nodes, outputs, Keras layers of an ONNX export).
    public var cutPoints: [String: CutPoint]

    public init(source: String, weights: String?, match: String?, seed: UInt64?, seededParameters: Int,
                optimization: String?, passes: [String]?, precision: String, cutPoints: [String: CutPoint]) {
        self.source = source
        self.weights = weights
        self.match = match
        self.seed = seed
        self.seededParameters = seededParameters
        self.optimization = optimization
        self.passes = passes
        self.precision = precision
        self.cutPoints = cutPoints
    }

    /// One line for `keel compile` and notes: "from x.keel, -O2, fp32, weights w.onnx (by name)".
    public var summary: String {
        var parts = ["from \(source)", optimization ?? "passes \(passes?.joined(separator: ",") ?? "")", precision]
        if let weights { parts.append("weights \(weights) (by \(match ?? "name"))") }
        if seededParameters > 0, let seed { parts.append("\(seededParameters) parameter tensors seeded-random (--seed \(seed))") }
        return parts.joined(separator: ", ")
    }
}
