import Foundation
import KeelFormat
import KeelIR
import KeelKernels
import KeelPasses
import XCTest
@testable import KeelRuntime

/// A bf16 plan keeps in bf16 exactly the activations only bf16 convolutions read, and its outputs
/// are the bits of the plan that keeps every activation fp32 and rounds it in each reader: the
/// producer's epilogue rounds to nearest even as the reader's conversion would have.
final class ActivationStorageRuleTests: XCTestCase {
    /// An RGB stem (bf16, its input split), a value a bf16 convolution and a bf16 dense layer read
    /// (the 1×1 convolution after -O2), a fused 2×2 pool, a stride-2 im2col layer, a sigmoid
    /// (applied in the kernel's epilogue, so stored bf16 too), and two graph outputs.
    private let source = """
        model chain
        input image: f32[N, 12, 16, 3]
        stem = conv2d(32, 3, padding: same, activation: relu)
        shared = conv2d(32, 3, padding: same, activation: relu)
        wide = conv2d(48, 3, padding: same, activation: relu)
        pool = max_pool2d(2)
        strided = conv2d(40, 3, strides: 2, padding: same, activation: relu)
        head = conv2d(32, 3, padding: same)
        side = conv2d(shared, 24, 1, activation: sigmoid)
        gated = conv2d(side, 16, 3, padding: same, activation: relu)
        output head
        output gated
        """

    private func model(bf16Activations: Bool) throws -> CompiledModel {
        let graph = try seededOptimizedGraph(source, path: "chain.keel", seed: 4)
        return try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .bf16,
                                                                         bf16Activations: bf16Activations))
    }

    private func image(batch: Int) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: UInt64(batch))
        let count = batch * 12 * 16 * 3
        return ["image": try Tensor(shape: [batch, 12, 16, 3], values: (0..<count).map { _ in Float(generator.nextUnit() * 2 - 1) })]
    }

    func testOnlyValuesEveryBF16ConvolutionReadsAreStoredBF16AndTheOutputsAreUnchanged() throws {
        try requireBF16()
        let stored = try model(bf16Activations: true), rounding = try model(bf16Activations: false)
        let outputs = try stored.kernelChoices(bindings: ["N": 1]).map { ($0.node, $0.choice.output) }
        // wide: pooled in its epilogue by AMX's direct form, else read by a separate (fp32) pool;
        // stem: on AVX512_BF16 alone its split input makes fp32 faster (`BF16Convolution.isFaster`),
        // and an fp32 layer stores fp32; head and gated: graph outputs; side: read by gated alone,
        // its sigmoid applied before the kernel rounds.
        let amxOnly: ActivationStorage = CPUCapabilities.inUse.contains(.amxBF16) ? .bf16 : .fp32
        let expected: [String: ActivationStorage] = ["stem": amxOnly, "shared": .bf16, "wide": amxOnly, "strided": .bf16,
                                                     "head": .fp32, "side": .bf16, "gated": .fp32]
        XCTAssertEqual(Dictionary(outputs, uniquingKeysWith: { first, _ in first }), expected)
        XCTAssertTrue(try rounding.kernelChoices(bindings: ["N": 1]).allSatisfy { $0.choice.output == .fp32 })
        for batch in [1, 3] {
            let inputs = try image(batch: batch)
            let (bf16Stored, fp32Stored) = (try stored.run(inputs), try rounding.run(inputs))
            XCTAssertEqual(bf16Stored, fp32Stored, "batch \(batch)")
            XCTAssertEqual(try stored.firstNonFinite(inputs), nil)
        }
        // Half the bytes for the bf16 values: the arena shrinks.
        XCTAssertLessThan(try stored.memoryReport(bindings: ["N": 3]).0, try rounding.memoryReport(bindings: ["N": 3]).0)
    }

    /// Two residual blocks (a 1×1 stem, then twice conv → conv + shortcut → ReLU): the shortcut
    /// each block's second convolution adds is read by bf16 convolutions only, so it is stored in
    /// bf16 too, which rounds the residual stream; the result stays within bf16's rounding of the
    /// fp32 plan's.
    func testAResidualStreamOnlyBF16ConvolutionsReadIsStoredBF16() throws {
        try requireBF16()
        let source = """
            model shortcuts
            input image: f32[N, 8, 10, 32]
            stem = conv2d(32, 1, activation: relu)
            inner1 = conv2d(stem, 32, 3, padding: same, activation: relu)
            outer1 = conv2d(inner1, 32, 3, padding: same)
            sum1 = add(outer1, stem)
            block1 = relu()
            inner2 = conv2d(block1, 32, 3, padding: same, activation: relu)
            outer2 = conv2d(inner2, 32, 3, padding: same)
            sum2 = add(outer2, block1)
            block2 = relu()
            head = conv2d(block2, 16, 1)
            output head
            """
        let graph = try seededOptimizedGraph(source, path: "shortcuts.keel", seed: 9)
        let bf16 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .bf16))
        let fp32 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .fp32))
        let choices = try bf16.kernelChoices(bindings: ["N": 2])
        XCTAssertEqual(choices.count, 6, "\(choices.map(\.node)): the adds and ReLUs fuse into the convolutions")
        // Every value but the graph output is read by bf16 convolutions only, shortcuts included.
        XCTAssertEqual(choices.map(\.choice.output), [.bf16, .bf16, .bf16, .bf16, .bf16, .fp32], "\(choices)")
        let inputs = try randomImages([2, 8, 10, 32], seed: 5)
        try assertNearFP32(bf16, fp32, inputs, "bf16 products and a bf16 residual stream")
        XCTAssertEqual(try bf16.firstNonFinite(inputs), nil)
    }

    /// Keras ResNet's downsampling: both readers of a block's output are 1×1 stride-2 convolutions,
    /// so -O2's stride hoisting computes the block's last convolution at every other pixel and
    /// subsamples its shortcut through a 1×1 max pool. The pool moves values without arithmetic, so
    /// the shortcut's producer still stores bf16 and the pool passes bf16 on, as its reader (the
    /// strided convolution's shortcut) is bf16; the result stays within bf16's rounding of fp32, at
    /// a batch of 1 and of 3 (image by image).
    func testAShortcutSubsampledByStrideHoistingStaysBF16() throws {
        try requireBF16()
        let source = """
            model downsample
            input image: f32[N, 12, 10, 32]
            stem = conv2d(32, 1, activation: relu)
            inner = conv2d(stem, 32, 1, activation: relu)
            outer = conv2d(inner, 32, 3, padding: same)
            sum = add(outer, stem)
            block = relu()
            down = conv2d(block, 64, 1, strides: 2)
            squeeze = conv2d(block, 32, 1, strides: 2, activation: relu)
            wide = conv2d(squeeze, 64, 1)
            merged = add(wide, down)
            out = relu()
            head = conv2d(out, 16, 1)
            output head
            """
        let graph = try seededOptimizedGraph(source, path: "downsample.keel", seed: 12)
        let pools = graph.nodes.filter { $0.op == .maxPool2d }
        XCTAssertEqual(pools.count, 1, "\(graph.nodes.map(\.name)): stride hoisting subsamples the shortcut")
        let bf16 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .bf16,
                                                                            batchSchedule: .imageByImage))
        let fp32 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .fp32))
        let choices = Dictionary(try bf16.kernelChoices(bindings: ["N": 3]).map { ($0.node, $0.choice) },
                                 uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(choices["stem"]?.output, .bf16, "the shortcut's producer: \(choices)")
        XCTAssertEqual(pools.first.flatMap { choices[$0.name] }?.output, .bf16, "the subsample: \(choices)")
        XCTAssertEqual(pools.first.flatMap { choices[$0.name] }?.algorithm, "subsample")
        for batch in [1, 3] {
            try assertNearFP32(bf16, fp32, try randomImages([batch, 12, 10, 32], seed: UInt64(batch)),
                               "batch \(batch): a bf16 subsampled shortcut")
        }
    }

    /// An inverted residual block (MobileNetV2's): a 1×1 expansion with ReLU6 read by two depthwise
    /// layers, a 3×3 one (ReLU6) whose only reader is the 1×1 projection, and a strided 5×5 one
    /// (swish) read by a global pool. The expansion and the 3×3 depthwise output are stored bf16
    /// where the depthwise kernel has a bf16 body; the 5×5 one's output, which an fp32 pool reads,
    /// and the graph's outputs stay fp32; both outputs stay near the fp32 plan's.
    func testDepthwiseLayersReadAndWriteBF16BetweenBF16Layers() throws {
        try requireBF16()
        let graph = try seededOptimizedIR("""
            graph inverted
            input %image: f32[N,14,14,32]
            const @expand/kernel: f32[1,1,32,96] kernel
            const @expand/bias: f32[96] bias
            const @dw/kernel: f32[3,3,1,96] kernel
            const @dw/bias: f32[96] bias
            const @wide/kernel: f32[5,5,1,96] kernel
            const @project/kernel: f32[1,1,96,32] kernel
            %expand = conv2d(%image, @expand/kernel, @expand/bias) {activation="clip", min=0.0, max=6.0} : ?
            %dw = conv2d(%expand, @dw/kernel, @dw/bias) {activation="clip", groups=96, max=6.0, min=0.0, padding="same"} : ?
            %wide = conv2d(%expand, @wide/kernel) {activation="swish", groups=96, padding="same", strides=[2,2]} : ?
            %head = conv2d(%dw, @project/kernel) : ?
            %pooled = global_avg_pool2d(%wide) : ?
            output head = %head
            output pooled = %pooled
            """, seed: 5)
        let bf16 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .bf16))
        let fp32 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .fp32))
        let choices = Dictionary(try bf16.kernelChoices(bindings: ["N": 2]).map { ($0.node, $0.choice) },
                                 uniquingKeysWith: { first, _ in first })
        let depthwiseBF16: ActivationStorage = CPUCapabilities.inUse.contains(.avx512BF16) ? .bf16 : .fp32
        XCTAssertEqual(choices.mapValues(\.output), ["expand": depthwiseBF16, "dw": depthwiseBF16, "wide": .fp32,
                                                     "head": .fp32, "pooled": .fp32], "\(choices)")
        if depthwiseBF16 == .bf16 {
            XCTAssertEqual(choices["dw"]?.algorithm, "depthwise+bf16_in")
            XCTAssertEqual(choices["wide"]?.algorithm, "depthwise+bf16_in")
        }
        for batch in [1, 2] {
            try assertNearFP32(bf16, fp32, try randomImages([batch, 14, 14, 32], seed: UInt64(7 + batch)),
                               "batch \(batch): bf16 around the depthwise layers")
            let inputs = try randomImages([batch, 14, 14, 32], seed: UInt64(7 + batch))
            guard let low = try bf16.run(inputs)["pooled"], let high = try fp32.run(inputs)["pooled"] else {
                return XCTFail("no output 'pooled'")
            }
            let largest = high.values.map(abs).max() ?? 0
            XCTAssertLessThan(zip(low.values, high.values).map { abs($0 - $1) }.max() ?? .infinity, 0.03 * largest)
        }
    }

    /// Depthwise layers between bf16 activations give the same bits image by image as over the
    /// whole batch: 24 channels (7·7·24 values an image, whole float slots) and 17 (an odd count,
    /// whose per-image slices would start mid-slot, so that value keeps the whole batch).
    func testBF16DepthwiseActivationsGiveTheSameBitsImageByImage() throws {
        try requireBF16()
        for channels in [24, 17] {
            let graph = try seededOptimizedIR("""
                graph inverted
                input %image: f32[N,7,7,16]
                const @expand/kernel: f32[\(channels),16,1,1] kernel
                const @dw/kernel: f32[\(channels),1,3,3] kernel
                const @head/kernel: f32[16,\(channels),1,1] kernel
                %expand = conv2d(%image, @expand/kernel) {activation="relu", kernel_layout="oihw"} : ?
                %dw = conv2d(%expand, @dw/kernel) {activation="relu", groups=\(channels), kernel_layout="oihw", padding="same"} : ?
                %head = conv2d(%dw, @head/kernel) {kernel_layout="oihw"} : ?
                output head = %head
                """, seed: 3)
            func model(_ schedule: BatchSchedule) throws -> CompiledModel {
                try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .bf16, batchSchedule: schedule))
            }
            let (byImage, whole) = (try model(.imageByImage), try model(.wholeBatch))
            if CPUCapabilities.inUse.contains(.avx512BF16) {
                let choices = try byImage.kernelChoices(bindings: ["N": 3])
                XCTAssertEqual(choices.first { $0.node == "dw" }?.choice.algorithm, "depthwise+bf16_in", "\(choices)")
            }
            let inputs = try randomImages([3, 7, 7, 16], seed: UInt64(channels))
            XCTAssertEqual(try byImage.run(inputs)["head"]?.values, try whole.run(inputs)["head"]?.values,
                           "\(channels) channels")
        }
    }

    /// A squeeze-excitation gate before a bf16 projection: the plan drops the multiply and the
    /// projection scales each image's bf16 filter by its gate (`BF16Convolution.gatesInput`); the
    /// result stays near the fp32 plan's, which folds the gate into its panels the same way.
    func testASqueezeExcitationGateFoldsIntoTheBF16Projection() throws {
        try requireBF16()
        // OIHW filters, as every ONNX export has them: the 1×1 layers stay convolutions.
        let graph = try seededOptimizedIR("""
            graph gated
            input %image: f32[N,12,12,32]
            const @expand/kernel: f32[96,32,1,1] kernel
            const @squeeze/kernel: f32[8,96,1,1] kernel
            const @excite/kernel: f32[96,8,1,1] kernel
            const @head/kernel: f32[24,96,1,1] kernel
            %expand = conv2d(%image, @expand/kernel) {activation="swish", kernel_layout="oihw"} : ?
            %pool = global_avg_pool2d(%expand) {keepdims=true} : ?
            %squeeze = conv2d(%pool, @squeeze/kernel) {activation="swish", kernel_layout="oihw"} : ?
            %excite = conv2d(%squeeze, @excite/kernel) {activation="sigmoid", kernel_layout="oihw"} : ?
            %gated = mul(%expand, %excite) : ?
            %head = conv2d(%gated, @head/kernel) {kernel_layout="oihw"} : ?
            output head = %head
            """, seed: 9)
        let bf16 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .bf16))
        let fp32 = try CompiledModel(graph: graph, context: ExecutionContext(threads: 2, precision: .fp32))
        let choices = try bf16.kernelChoices(bindings: ["N": 2])
        let head = try XCTUnwrap(choices.first { $0.node == "head" }?.choice)
        if BF16Convolution.gatesInput(Conv2DGeometry(batch: 2, input: Size2D(12, 12), inputChannels: 96, outputChannels: 24,
                                                     kernel: Size2D(1, 1))) {
            XCTAssertEqual(head.precision, .bf16, "\(head)")
            XCTAssertTrue(head.algorithm.hasSuffix("+gate"), "\(head)")
            XCTAssertFalse(choices.contains { $0.node == "gated" }, "the multiply's step is dropped: \(choices.map(\.node))")
        }
        for batch in [1, 2] {
            try assertNearFP32(bf16, fp32, try randomImages([batch, 12, 12, 32], seed: UInt64(20 + batch)),
                               "batch \(batch): a gated bf16 projection")
        }
    }

    private func requireBF16() throws {
        guard Precision.bf16.isAvailable else {
            throw XCTSkip("this CPU has neither AMX-BF16 nor AVX512_BF16: bf16 plans run fp32")
        }
    }

    /// `source` parsed, shape-inferred and optimised at -O2, its parameters from Keras's initialisers.
    private func seededOptimizedGraph(_ source: String, path: String, seed: UInt64) throws -> Graph {
        var graph = try ShapeInference().run(parseKeelGraph(source: source, path: path)).graph
        graph = try PassPipeline.standard(level: .O2).run(graph).graph
        for (name, constant) in graph.constants { graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: seed) }
        return graph
    }

    /// The IR text `source`, shape-inferred and optimised at -O2, its parameters from Keras's initialisers.
    private func seededOptimizedIR(_ source: String, seed: UInt64) throws -> Graph {
        var graph = try PassPipeline.standard(level: .O2).run(ShapeInference().run(parseIR(source)).graph).graph
        for (name, constant) in graph.constants { graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: seed) }
        return graph
    }

    private func randomImages(_ shape: [Int], seed: UInt64) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: seed)
        return ["image": try Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(generator.nextUnit() * 2 - 1) })]
    }

    /// The bf16 plan's output 'head' within 3% of the fp32 plan's largest magnitude.
    private func assertNearFP32(_ bf16: CompiledModel, _ fp32: CompiledModel, _ inputs: [String: Tensor],
                                _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        guard let low = try bf16.run(inputs)["head"], let high = try fp32.run(inputs)["head"] else {
            return XCTFail("no output 'head'", file: file, line: line)
        }
        let largest = high.values.map(abs).max() ?? 0
        let worst = zip(low.values, high.values).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertGreaterThan(largest, 0, file: file, line: line)
        XCTAssertLessThan(worst, 0.03 * largest, "\(label) stay near fp32", file: file, line: line)
    }
}
