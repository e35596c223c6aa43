import Foundation
import KeelIR

/// How hard `keel compile` optimises: -O0 runs nothing, -O1 cleans up without touching weights,
/// -O2 also folds, fuses and changes layouts.
public enum OptimizationLevel: Int, Sendable, CaseIterable, Comparable {
    /// Named after the flags (`-O0`), which is how users and the CLI refer to them.
    case O0 = 0, O1 = 1, O2 = 2

    /// Accepts `0`, `O2`, `-O1`.
    public init?(parsing text: String) {
        var digits = Substring(text)
        if digits.hasPrefix("-") { digits = digits.dropFirst() }
        if digits.hasPrefix("O") { digits = digits.dropFirst() }
        guard let value = Int(digits), let level = OptimizationLevel(rawValue: value) else { return nil }
        self = level
    }

    public static func < (lhs: OptimizationLevel, rhs: OptimizationLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Problems a pipeline reports by name, so `--passes` typos and broken rewrites are easy to act on.
public enum PassPipelineError: Error, Equatable, CustomStringConvertible {
    case unknownPass(String, suggestion: String?, available: [String])
    /// A pass produced a graph the verifier rejects: names the pass and the verifier's complaint.
    case invalidGraph(pass: String, diagnostic: Diagnostic)

    public var description: String {
        switch self {
        case .unknownPass(let name, let suggestion, let available):
            let hint = suggestion.map { "; did you mean '\($0)'?" } ?? ""
            return "unknown pass '\(name)'\(hint) (passes: \(available.joined(separator: ", ")))"
        case .invalidGraph(let pass, let diagnostic):
            return "pass '\(pass)' produced an invalid graph: \(diagnostic.headline)"
        }
    }
}

/// The outcome of a pipeline: the graph, one `name: statistic` line per pass, and one
/// `name: kept ...` line per candidate a pass left alone.
public struct PipelineResult: Sendable {
    public var graph: Graph
    public var log: [String]
    public var explanations: [String]
}

/// An ordered list of passes, run one after the other on a shape-inferred, weight-bound graph.
public struct PassPipeline {
    public var passes: [any Pass]

    public init(passes: [any Pass]) { self.passes = passes }

    /// Every optimising pass by name, in the order -O2 runs them.
    public static let registry: [(name: String, make: () -> any Pass)] = [
        ("identity-removal", { IdentityRemoval() }),
        ("expand-sinking", { ExpandSinking() }),
        ("constant-folding", { ConstantFolding() }),
        ("layer-norm-recognition", { LayerNormRecognition() }),
        ("gelu-recognition", { GeluRecognition() }),
        ("hard-swish-recognition", { HardSwishRecognition() }),
        ("attention-recognition", { AttentionRecognition() }),
        ("transpose-cancellation", { TransposeCancellation() }),
        ("shuffle-to-gather", { ShuffleToGather() }),
        ("factored-sum-to-split", { FactoredSumToSplit() }),
        ("image-transpose-exposure", { ImageTransposeExposure() }),
        ("channels-last-conversion", { ChannelsLastConversion() }),
        ("layout-propagation", { LayoutPropagation() }),
        ("matmul-to-dense", { MatMulToDense() }),
        ("pointwise-conv-to-dense", { PointwiseConvolutionToDense() }),
        ("pad-fusion", { PadFusion() }),
        ("batch-norm-folding", { BatchNormFolding() }),
        ("epilogue-fusion", { EpilogueFusion() }),
        ("grouped-conv-split", { GroupedConvolutionSplitting() }),
        ("pool-before-pointwise-conv", { PoolBeforePointwiseConvolution() }),
        ("stride-hoisting", { StrideHoisting() }),
        ("max-pool-fusion", { MaxPoolFusion() }),
        ("dead-code-elimination", { DeadCodeElimination() }),
        ("freeze-marking", { FreezeMarking() }),
        ("shape-inference", { ShapeInference() }),
    ]

    public static var availablePassNames: [String] { registry.map(\.name) }

    /// -O0: nothing. -O1: identity removal, expands of constants moved below what computes alike at
    /// every expanded index, constant folding, layer norm, GELU and attention recognition,
    /// transpose cancellation, dead-code elimination (weights keep their values). -O2: all of -O1 plus channel shuffles
    /// as gathers, sums over a factored axis as splits, token-to-image transposes moved beside the image, NCHW inputs offered
    /// as NHWC and layout propagation (and a
    /// second transpose cancellation for what it exposes), MatMul and 1×1 conv to dense,
    /// BatchNorm folding, epilogue fusion, grouped 3×3 convolutions of a few wide groups split by group,
    /// average pools moved before 1×1 convolutions, strides moved up into
    /// the producing convolution and max-pool fusion.
    public static func standard(level: OptimizationLevel) -> PassPipeline {
        // Pass values, not names: a level cannot name a pass that does not exist.
        switch level {
        case .O0:
            return PassPipeline(passes: [])
        case .O1:
            return PassPipeline(passes: [IdentityRemoval(), ExpandSinking(), ConstantFolding(), LayerNormRecognition(), GeluRecognition(),
                                         HardSwishRecognition(), AttentionRecognition(), TransposeCancellation(),
                                         DeadCodeElimination()])
        case .O2:
            return PassPipeline(passes: [IdentityRemoval(), ExpandSinking(), ConstantFolding(), LayerNormRecognition(), GeluRecognition(),
                                         HardSwishRecognition(), AttentionRecognition(), TransposeCancellation(), ShuffleToGather(),
                                         FactoredSumToSplit(), ImageTransposeExposure(), ChannelsLastConversion(),
                                         LayoutPropagation(),
                                         TransposeCancellation(), MatMulToDense(), PointwiseConvolutionToDense(), PadFusion(),
                                         BatchNormFolding(), EpilogueFusion(), GroupedConvolutionSplitting(),
                                         PoolBeforePointwiseConvolution(), StrideHoisting(),
                                         MaxPoolFusion(),
                                         DeadCodeElimination()])
        }
    }

    /// The passes `names` lists, in that order (`--passes a,b,c`). An unknown name is an error
    /// that suggests the closest known one.
    public init(named names: [String]) throws {
        let available = Self.availablePassNames
        passes = try names.map { name in
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let entry = Self.registry.first(where: { $0.name == trimmed }) else {
                throw PassPipelineError.unknownPass(trimmed, suggestion: closestMatch(to: trimmed, among: available),
                                                    available: available)
            }
            return entry.make()
        }
    }

    public var passNames: [String] { passes.map(\.name) }

    /// Runs every pass in order. With `verifyAfterEach`, the graph is verified after each pass
    /// and a failure names the pass that broke it. `printAfterEach` sees the pass name, its
    /// statistic line and the graph it produced (`--print-ir-after-all`).
    public func run(_ graph: Graph, verifyAfterEach: Bool = true,
                    printAfterEach: ((String, String, Graph) -> Void)? = nil) throws -> PipelineResult {
        try ShapeInference.reusingResults {
            try run(passes: graph, verifyAfterEach: verifyAfterEach, printAfterEach: printAfterEach)
        }
    }

    private func run(passes graph: Graph, verifyAfterEach: Bool,
                     printAfterEach: ((String, String, Graph) -> Void)?) throws -> PipelineResult {
        var current = graph
        var log: [String] = []
        var explanations: [String] = []
        for pass in passes {
            let result = try pass.run(current)
            // A graph inference just produced is verified already (inference verifies first).
            if verifyAfterEach && !ShapeInference.isLastResult(result.graph) {
                do { try verify(result.graph) } catch let diagnostic as Diagnostic {
                    throw PassPipelineError.invalidGraph(pass: pass.name, diagnostic: diagnostic)
                }
            }
            current = result.graph
            log.append("\(pass.name): \(result.statistic)")
            explanations += result.explanations.map { "\(pass.name): \($0)" }
            printAfterEach?(pass.name, result.statistic, current)
        }
        return PipelineResult(graph: current, log: log, explanations: explanations)
    }
}
