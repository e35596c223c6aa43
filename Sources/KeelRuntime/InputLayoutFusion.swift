import KeelIR
import KeelKernels

/// transpose nodes that turn an NCHW activation into NHWC (perm [0,2,3,1]) for a convolution on the
/// direct kernel alone: a PyTorch graph's image going into its stem once the layout pass made the
/// network NHWC. The plan drops the transpose's step and the convolution reads the NCHW value: the
/// direct kernel copies each input row into its own zero-padded lines whatever the layout
/// (`Conv2D.apply(inputLayout:)`), so the transpose cost nothing there. On Zen 4 the transpose of a
/// 224×224 RGB image (3 channels innermost, a strided gather) was 2.4% of MobileNetV2 at batch 1.
enum InputLayoutFusion {
    static let channelsFirstToLast = [0, 2, 3, 1]

    /// The absorbed transpose's node index for each convolution node index.
    static func find(graph: Graph, shapes: [String: [Int]], pinned: Set<String>, context: ExecutionContext,
                     prepared: PreparedWeights, isActivation: (String) -> Bool) -> [Int: Int] {
        let uses = ConvolutionInputFusion(graph: graph)
        var result: [Int: Int] = [:]
        for (index, node) in graph.nodes.enumerated() where node.op == .conv2d {
            guard let (transposeIndex, _) = uses.soleInputProducer(.transpose, ofConvolution: node, shapes: shapes,
                                                                    pinned: pinned, context: context, prepared: prepared,
                                                                    accepts: readsAnyLayout) else { continue }
            let transpose = graph.nodes[transposeIndex]
            guard transpose.outputs.count == 1, let input = transpose.presentInputs.first,
                  isActivation(input), isActivation(transpose.outputs[0]), shapes[input]?.count == 4,
                  (try? AttributeReader(node: transpose).optionalInts("perm")) == channelsFirstToLast else { continue }
            result[index] = transposeIndex
        }
        return result
    }

    /// The shape the convolution sees (NHWC) of the NCHW value it reads.
    static func convolutionInputShape(ofChannelsFirst shape: [Int]) -> [Int] {
        channelsFirstToLast.map { shape[$0] }
    }

    /// The fp32 direct algorithm on an NHWC convolution: the one kernel that reads either layout.
    private static func readsAnyLayout(_ layer: ConvolutionLayer) -> Bool {
        layer.choice.form == .packed && layer.choice.algorithm == .direct && layer.kernelGeometry.layout == .nhwc
    }
}
