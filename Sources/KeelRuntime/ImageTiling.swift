import Foundation
import KeelIR

/// How a plan for a batch of several images orders its layers.
public enum BatchSchedule: String, Sendable, CaseIterable {
    /// Layers whose activations outgrow L2 run image by image, the others on the whole batch.
    case automatic
    /// Every layer on the whole batch, one after another.
    case wholeBatch = "whole-batch"
    /// Every layer that can, image by image.
    case imageByImage = "image-by-image"
}

/// Runs of layers that a batched plan computes one image at a time: all of a run's layers on
/// image 0, then on image 1, and so on.
///
/// A layer over the whole batch writes B images' worth of activations before the next layer reads
/// the first of them; once one image's activations outgrow L2, the batch's no longer fit in any
/// cache and every layer streams its input back from memory (MobileNetV2's 112×112 and 56×56
/// layers at batch 8: 1.3–2.1× the time of 8 single images). Image by image, a layer reads what the
/// previous one has just written. Layers whose weights outweigh their activations (ResNet50's
/// last stage) keep the whole batch, where one pass over the weights serves every image and the
/// GEMM has rows enough to run at speed.
///
/// Values a run passes to its next layer take one image's buffer, reused by every image; values that
/// enter or leave a run are laid out as over the whole batch, each image's step reading and writing
/// its slice.
struct ImageTiling {
    let batch: Int
    /// Node index ranges whose steps run image by image, in order, disjoint.
    let runs: [ClosedRange<Int>]
    private let runsByStart: [Int: ClosedRange<Int>]

    init(batch: Int, runs: [ClosedRange<Int>]) {
        self.batch = batch
        self.runs = runs
        runsByStart = Dictionary(uniqueKeysWithValues: runs.map { ($0.lowerBound, $0) })
    }

    /// The run that starts at node `index`, if one does.
    func run(startingAt index: Int) -> ClosedRange<Int>? { runsByStart[index] }

    /// The run holding node `index`, if one does (a binary search: graphs have up to 100,000 nodes).
    func run(containing index: Int) -> ClosedRange<Int>? {
        var (low, high) = (0, runs.count)
        while low < high {
            let middle = (low + high) / 2
            if runs[middle].upperBound < index { low = middle + 1 } else { high = middle }
        }
        return low < runs.count && runs[low].contains(index) ? runs[low] : nil
    }

    /// Sizes and lifetimes of the plan's buffers (`requests[i]` holds root `roots[i]`) under the
    /// runs; returns the roots that hold one image at a time.
    ///
    /// A buffer that only one run's steps read and write (and that is neither a graph input nor an
    /// output) holds one image: image 1 reuses it once image 0 is done with it, so its lifetime
    /// within the run stays what it is in node order. Every other buffer a run touches holds the
    /// whole batch and lives across the whole run, since image 1's steps come after all of image 0's.
    func place(_ requests: inout [BufferRequest], roots: [String], pinned: Set<String>) -> Set<String> {
        var perImage: Set<String> = []
        for index in requests.indices {
            let first = run(containing: requests[index].firstStep), last = run(containing: requests[index].lastStep)
            if let first, first == last, !pinned.contains(roots[index]) {
                requests[index].size = max(requests[index].size / batch, 1)
                perImage.insert(roots[index])
                continue
            }
            if let first { requests[index].firstStep = first.lowerBound }
            if let last { requests[index].lastStep = last.upperBound }
        }
        return perImage
    }

    /// Below this many bytes of activations per image (inputs and outputs), a layer keeps the
    /// whole batch; L2's size where the system reports it. Measured on Zen 3 (512 KB L2) at batch
    /// 8: layers of 0.7 MB and more per image ran 1.0–2.1× faster image by image, layers of 0.4 MB
    /// and less 0.8–0.95× as fast.
    static let activationBytesThreshold: Int = {
        #if os(Linux)
        let reported = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
        if reported >= 64 * 1024 { return reported }
        #endif
        return 512 * 1024
    }()

    /// A step this small (activations under L2 per image, weights a quarter of L2 at most) between
    /// two image-by-image steps joins their run: on the whole batch it split the run, and the
    /// values crossing it went back to memory for the whole batch. Squeeze-excitation's two dense
    /// layers sit between the depthwise convolution with its pool and the gate with the projection:
    /// split there, the gated activations of all eight images (9.6 MB, EfficientNet-B0's 56×56
    /// blocks) were written before the first was read back.
    static var bridgeWeightBytes: Int { activationBytesThreshold / 4 }

    /// Floating-point operations per byte of activations above which a layer keeps the whole batch:
    /// it waits on its multiplies, not on memory, so the cache gains it nothing, and its kernel
    /// may run faster over more rows. VGG16's 3×3 convolutions (190–580 per byte) ran 1.0–1.3×
    /// slower image by image at batch 8 on Zen 3; ResNet50's 56×56 3×3 ones (144) 1.1–1.2× faster.
    static let computeBoundIntensity = 160

    /// What the plan's graph allows and `schedule` asks for; nil when every layer takes the whole
    /// batch. Only graphs whose every input has the batch symbol as its first axis tile, and only
    /// layers whose every activation has that symbol first, whose op computes each image from the
    /// same image alone, and whose weights fit the batch-1 plan's (the prepare phase prepares at
    /// batch 1, so an image's step reads exactly the forms already held).
    static func plan(graph: Graph, shapes: [String: [Int]], bindings: [String: Int], schedule: BatchSchedule,
                     isStep: (Int) -> Bool, reads: (Int) -> [String], isActivation: (String) -> Bool,
                     isConstant: (String) -> Bool, rootOf: (String) -> String) -> ImageTiling? {
        guard schedule != .wholeBatch, let symbol = batchSymbol(of: graph), let batch = bindings[symbol], batch > 1
        else { return nil }
        func splits(_ value: String) -> Bool {
            guard isActivation(value), graph.type(of: value)?.shape.dims.first == .symbol(symbol),
                  shapes[value]?.first == batch else { return false }
            let root = rootOf(value)
            return !isConstant(root) && graph.type(of: root)?.shape.dims.first == .symbol(symbol)
                && shapes[root]?.first == batch
        }
        enum Placement { case imageByImage, bridge, wholeBatch }
        func placement(_ index: Int) -> Placement {
            let node = graph.nodes[index]
            let inputs = reads(index).filter { !$0.isEmpty }
            let activations = inputs.filter { !isConstant($0) } + node.outputs
            guard activations.allSatisfy(splits), computesEachImageAlone(node, shapes: shapes, batch: batch,
                                                                         inputs: inputs, isConstant: isConstant)
            else { return .wholeBatch }
            if schedule == .imageByImage { return .imageByImage }
            func bytes(_ value: String) -> Int { 4 * (shapes[value]?.reduce(1, *) ?? 0) }
            let activationBytes = activations.reduce(0) { $0 + bytes($1) } / batch
            let weightBytes = inputs.filter(isConstant).reduce(0) { $0 + bytes($1) }
            let flops = 2 * ModelSummary.macsPerImage(of: node, in: graph)
            if activationBytes > activationBytesThreshold && weightBytes < activationBytes
                && flops < computeBoundIntensity * activationBytes { return .imageByImage }
            return activationBytes <= activationBytesThreshold && weightBytes <= bridgeWeightBytes ? .bridge : .wholeBatch
        }
        // Maximal runs of image-by-image steps; nodes that are not steps (views, batch norms a
        // convolution applies) neither break nor start a run, and nor do small steps between two
        // image-by-image ones (bridges). A run of one step gains nothing.
        var runs: [ClosedRange<Int>] = []
        var start: Int?, end = 0, steps = 0
        func close() {
            if let first = start, steps >= 2 { runs.append(first...end) }
            start = nil
            steps = 0
        }
        for index in graph.nodes.indices {
            guard isStep(index) else { continue }
            switch placement(index) {
            case .imageByImage:
                if start == nil { start = index }
                end = index
                steps += 1
            case .bridge:
                // Inside a run only if an image-by-image step follows (`end` stays put until then).
                continue
            case .wholeBatch:
                close()
            }
        }
        close()
        return runs.isEmpty ? nil : ImageTiling(batch: batch, runs: runs)
    }

    /// The symbol every graph input has as its first axis; nil if they differ or one has none.
    private static func batchSymbol(of graph: Graph) -> String? {
        let symbols = graph.inputs.map { input -> String? in
            if case .symbol(let name)? = input.type.shape.dims.first { return name }
            return nil
        }
        guard let first = symbols.first ?? nil, symbols.allSatisfy({ $0 == first }) else { return nil }
        return first
    }

    /// Ops whose output image i depends on input image i alone (and on weights), given that every
    /// activation has the batch first: convolutions, dense layers (rows), pools, normalisation and
    /// softmax over axes after the batch, element-wise
    /// ops whose constants broadcast over the batch, concatenations and transposes that keep the
    /// batch first.
    private static func computesEachImageAlone(_ node: Node, shapes: [String: [Int]], batch: Int, inputs: [String],
                                               isConstant: (String) -> Bool) -> Bool {
        let attributes = AttributeReader(node: node)
        let rank = node.outputs.first.flatMap { shapes[$0]?.count } ?? 0
        switch node.op {
        case .conv2d, .dense, .batchNorm, .maxPool2d, .avgPool2d, .globalAvgPool2d, .globalMaxPool2d, .identity, .dropout:
            return true
        case .layerNorm, .softmax, .logSoftmax:
            let axis = (try? attributes.int("axis")) ?? -1
            return (axis < 0 ? axis + rank : axis) != 0
        case .relu, .leakyRelu, .elu, .selu, .sigmoid, .tanh, .gelu, .erf, .softplus, .hardSigmoid, .hardSwish,
             .swish, .clip, .sqrt, .exp, .log, .neg, .abs, .reciprocal, .ceil, .floor, .round, .sin, .cos, .prelu, .add, .sub, .mul, .div, .pow, .max,
             .min, .sum:
            // A constant of the output's rank must not vary along the batch (clip's bounds are scalars).
            return inputs.filter(isConstant).allSatisfy { constant in
                guard let shape = shapes[constant] else { return true }
                return shape.count < rank || shape.first == 1
            }
        case .concat:
            guard let axis = try? attributes.int("axis") else { return false }
            return (axis < 0 ? axis + rank : axis) != 0 && !inputs.contains(where: isConstant)
        case .transpose:
            guard let permutation = try? attributes.optionalInts("perm") else { return false }
            return permutation.first == 0
        default:
            return false
        }
    }
}
