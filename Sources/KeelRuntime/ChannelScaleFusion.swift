import KeelIR
import KeelKernels

/// mul nodes that gate a pointwise NHWC convolution's input channels image by image, x·s with s
/// of shape [N,1,1,C] computed at run time (squeeze-excitation: EfficientNet's and MobileNetV3's
/// sigmoid gate before each block's projection): the plan drops the mul's step and the convolution
/// scales each image's copy of its filter instead, x·diag(s)·W = x·(diag(s)·W)
/// (`Conv2D.apply(inputScales:)`), so the gated activations are never written and read back.
/// The copy pays where an image has at least four times as many pixels as the convolution has
/// outputs (`Conv2D.gateCopyPixelsPerOutput`): then it (channels × outputs, per image) is well
/// below the activations the mul would write (pixels × channels). EfficientNet-B0 at batch 8
/// on Zen 4, two threads: its 14×14 projections (196 pixels, 80 and 112 outputs) took 0.9–2.1 ms
/// gated that way against 0.4–1.4 ms plus 0.1–0.3 ms of mul; the 112×112 to 28×28 ones (≥ 19
/// pixels per output) gained what the mul cost. Elsewhere the bf16 kernel and batched fp32 plans
/// keep the mul. At batch 1 the fp32 panels gate every such layer:
/// on the smaller images they scale the input rows as the GEMM packs them instead
/// (`Conv2D.gateScalesFilter`), the one product the layer makes anyway (Keras EfficientNetB0's
/// 14×14 and 7×7 blocks: mul and projection 1.82 → 1.53–1.63 ms). At batch 8 that took one
/// product per image where the mul leaves one over the batch, and the 7×7 blocks ran 5–15% slower.
enum ChannelScaleFusion {
    struct Fused {
        /// The mul node's index.
        let mul: Int
        /// The activations the convolution reads instead of the mul's output.
        let input: String
        /// The [N,1,1,C] gate.
        let scales: String
    }

    /// Where the convolution step reads the gate: after data, filter, bias and residual.
    static let inputPosition = 4

    /// The fused mul of each convolution node index.
    static func find(graph: Graph, shapes: [String: [Int]], pinned: Set<String>, context: ExecutionContext,
                     prepared: PreparedWeights, isActivation: (String) -> Bool) -> [Int: Fused] {
        let uses = ConvolutionInputFusion(graph: graph)
        var result: [Int: Fused] = [:]
        for (index, node) in graph.nodes.enumerated() where node.op == .conv2d {
            guard let (mulIndex, layer) = uses.soleInputProducer(.mul, ofConvolution: node, shapes: shapes, pinned: pinned,
                                                                 context: context, prepared: prepared,
                                                                 accepts: ConvolutionInputFusion.takesInputGate) else { continue }
            let mul = graph.nodes[mulIndex]
            guard mul.op == .mul, mul.inputs.count == 2, mul.outputs.count == 1,
                  (try? mul.fusedActivation) == FusedActivation.none,
                  let gated = shapes[mul.outputs[0]], gated.count == 4 else { continue }
            let (first, second) = (mul.inputs[0], mul.inputs[1])
            guard first != second, isActivation(first), isActivation(second),
                  let input = shapes[first] == gated ? first : shapes[second] == gated ? second : nil else { continue }
            let scales = input == first ? second : first
            let geometry = layer.kernelGeometry
            let pixels = geometry.output.height * geometry.output.width
            guard shapes[scales] == [gated[0], 1, 1, gated[3]],
                  (layer.choice.form == .panels && gated[0] == 1) || pixels >= Conv2D.gateCopyPixelsPerOutput * geometry.outputChannels
            else { continue }
            result[index] = Fused(mul: mulIndex, input: input, scales: scales)
        }
        return result
    }
}
