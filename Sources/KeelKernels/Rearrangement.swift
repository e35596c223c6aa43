/// Kernels that cut, repeat or regroup elements: split (concat's inverse), tile, and the
/// depth/space block moves. Tile and the block moves are strided copies over an index space
/// with one axis per (repeat or block, extent) pair, so they share transpose's engine.

/// How depth_to_space orders a block's channels (ONNX `mode`): DCR takes block row, block
/// column, then channel (TensorFlow's and ONNX's default); CRD takes channel first (PyTorch's
/// pixel shuffle).
public enum BlockChannelOrder: Sendable, Equatable {
    case depthColumnRow
    case columnRowDepth
}

/// The "depth" side of a depth/space move: an image of `channels` = b²·C' channels at the
/// small resolution.
public struct BlockGeometry: Sendable, Equatable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var blockSize: Int
    public var order: BlockChannelOrder
    public var layout: ActivationLayout

    public init(batch: Int, channels: Int, height: Int, width: Int, blockSize: Int,
                order: BlockChannelOrder = .depthColumnRow, layout: ActivationLayout = .nhwc) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.blockSize = blockSize
        self.order = order
        self.layout = layout
    }

    var totalElements: Int { batch * channels * height * width }

    /// The index space walked in the order of the "space" tensor (so contiguous there), and the
    /// matching strides into the "depth" tensor.
    func spaceOrderedView(_ name: String) throws -> (shape: [Int], depthStrides: [Int]) {
        let block = blockSize
        try require(block > 0 && batch >= 0 && height >= 0 && width >= 0 && channels >= 0, name,
                    "block \(block), batch \(batch), \(height)×\(width)×\(channels)")
        try require(channels % (block * block) == 0, name, "\(channels) channels do not divide into \(block)×\(block) blocks")
        _ = try elementCount([batch, channels, height, width], name)
        let reduced = channels / (block * block)
        let dcr = order == .depthColumnRow
        switch layout {
        case .nchw:
            // Space [N, C', H·b, W·b] walked as (n, c', h, i, w, j).
            let plane = height * width
            return ([batch, reduced, height, block, width, block],
                    [channels * plane, dcr ? plane : block * block * plane, width,
                     dcr ? block * reduced * plane : block * plane, 1, dcr ? reduced * plane : plane])
        case .nhwc:
            // Space [N, H·b, W·b, C'] walked as (n, h, i, w, j, c').
            return ([batch, height, block, width, block, reduced],
                    [height * width * channels, width * channels, dcr ? block * reduced : block, channels,
                     dcr ? reduced : 1, dcr ? 1 : block * block])
        }
    }
}

extension DataMovement {
    /// Splits a tensor viewed as [outer, sum(axisExtents), inner] along the middle axis into
    /// `outputs[i]` of [outer, axisExtents[i], inner].
    public static func split(input: UnsafeBufferPointer<Float>, axisExtents: [Int], outer: Int, inner: Int,
                             outputs: [UnsafeMutableBufferPointer<Float>], context: KernelContext = .singleThreaded) throws {
        let name = "split"
        try require(outputs.count == axisExtents.count && !outputs.isEmpty, name,
                    "\(outputs.count) outputs with \(axisExtents.count) axis extents")
        try require(axisExtents.allSatisfy { $0 >= 0 }, name, "negative extent in \(axisExtents)")
        var total = 0
        for (buffer, extent) in zip(outputs, axisExtents) {
            try requireCapacity(buffer.count, try elementCount([outer, extent, inner], name), name, "output")
            total += extent
        }
        try requireCapacity(input.count, try elementCount([outer, total, inner], name), name, "input")
        guard let source = input.baseAddress else { return }
        var offset = 0
        for (buffer, extent) in zip(outputs, axisExtents) {
            let run = extent * inner
            if run > 0, outer > 0, let destination = buffer.baseAddress {
                let start = offset
                context.forEachChunk(outer, minimumChunk: max(1, parallelGrain / run)) { rows in
                    for row in rows {
                        (destination + row * run).update(from: source + row * total * inner + start, count: run)
                    }
                }
            }
            offset += run
        }
    }

    /// Repeats `input` of `shape` `repeats[axis]` times along each axis (ONNX Tile); the output
    /// has extents shape[axis]·repeats[axis].
    public static func tile(input: UnsafeBufferPointer<Float>, shape: [Int], repeats: [Int],
                            output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "tile"
        try require(repeats.count == shape.count, name, "\(repeats.count) repeats for rank \(shape.count)")
        try require(repeats.allSatisfy { $0 >= 0 } && shape.allSatisfy { $0 >= 0 }, name, "negative extent or repeat")
        try requireCapacity(input.count, try elementCount(shape, name), name, "input")
        // Output axis a is (repeat k, element j) with index k·shape[a] + j: walk both as axes.
        let space = zip(repeats, shape).flatMap { [$0, $1] }
        let count = try elementCount(space, name)
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let sourceStrides = contiguousStrides(shape).flatMap { [0, $0] }
        stridedCopy(from: source, sourceStrides: sourceStrides, to: destination,
                    destinationStrides: contiguousStrides(space), shape: space, context: context)
    }

    /// Moves b×b blocks of channels into space: `geometry` describes the input; the output is
    /// [N, C/b², H·b, W·b] (or the NHWC equivalent).
    public static func depthToSpace(input: UnsafeBufferPointer<Float>, geometry: BlockGeometry,
                                    output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "depth_to_space"
        let (space, depthStrides) = try geometry.spaceOrderedView(name)
        try requireCapacity(input.count, geometry.totalElements, name, "input")
        try requireCapacity(output.count, geometry.totalElements, name, "output")
        guard geometry.totalElements > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        stridedCopy(from: source, sourceStrides: depthStrides, to: destination,
                    destinationStrides: contiguousStrides(space), shape: space, context: context)
    }

    /// The inverse of `depthToSpace`: `geometry` describes the output (the depth side), so the
    /// input is [N, C/b², H·b, W·b] (or the NHWC equivalent).
    public static func spaceToDepth(input: UnsafeBufferPointer<Float>, geometry: BlockGeometry,
                                    output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "space_to_depth"
        let (space, depthStrides) = try geometry.spaceOrderedView(name)
        try requireCapacity(input.count, geometry.totalElements, name, "input")
        try requireCapacity(output.count, geometry.totalElements, name, "output")
        guard geometry.totalElements > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        stridedCopy(from: source, sourceStrides: contiguousStrides(space), to: destination,
                    destinationStrides: depthStrides, shape: space, context: context)
    }
}
