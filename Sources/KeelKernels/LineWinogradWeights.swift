/// A 1×k, k×1 or k×k filter in the F(4, k) domain (`LineWinograd`), transformed once when a model
/// is prepared: one [inputChannels, outputChannels] matrix per point (k + 3 for a line, (k + 3)² for
/// a square), each in the panel GEMM's 32-column panels like the 3×3 Winograd weights; (k + 3)/k
/// the plain filter's size for a line, 64/25 for a 5×5 square.
import CSIMDKernels

public struct LineWinogradWeights: Sendable, Equatable {
    public let inputChannels: Int
    public let outputChannels: Int
    /// The filter's length along each axis it spans.
    public let taps: Int
    /// Whether it spans both axes (k×k) rather than one.
    public let square: Bool
    /// Whether each panel is stored as two 16-column halves.
    public let splitHalves: Bool
    /// [points][panels][inputChannels][panelColumns].
    let storage: WeightStorage

    public var points: Int { Self.points(taps: taps, square: square) }
    var layout: PanelLayout { PanelLayout(depth: inputChannels, splitHalves: splitHalves) }
    var pointStride: Int { WinogradWeights.pointStride(inputChannels: inputChannels, outputChannels: outputChannels) }

    /// Logical extents of the transformed values: [points, inputChannels, outputChannels].
    public var dims: [Int] { [points, inputChannels, outputChannels] }

    private static let name = "line winograd weights"

    private static func points(taps: Int, square: Bool) -> Int {
        let perAxis = taps + LineWinograd.outputSize - 1
        return square ? perAxis * perAxis : perAxis
    }

    private static func storageCount(inputChannels: Int, outputChannels: Int, taps: Int, square: Bool) throws -> Int {
        try elementCount([points(taps: taps, square: square), WinogradWeights.panels(outputChannels: outputChannels),
                          inputChannels, WinogradWeights.panelColumns], name)
    }

    private static func requireTaps(_ taps: Int, square: Bool) throws -> LineWinogradTransforms {
        guard let transforms = LineWinogradTransforms.forTaps(taps), !square || LineWinograd.squareTaps.contains(taps) else {
            throw KernelError.invalidArgument(kernel: name, message: "no transform for \(taps) taps"
                                              + (square ? " square (5)" : " along a line (3, 5 or 7)"))
        }
        return transforms
    }

    /// Read access to the transformed values as stored, valid inside `body`.
    public func withUnsafeValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Values transformed earlier (by `withUnsafeValues`) and kept elsewhere, used in place while
    /// `owner` lives. Throws unless the count matches.
    public init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, taps: Int, square: Bool = false,
                inputChannels: Int, outputChannels: Int, splitHalves: Bool) throws {
        _ = try Self.requireTaps(taps, square: square)
        try require(inputChannels > 0 && outputChannels > 0, Self.name,
                    "\(inputChannels) input and \(outputChannels) output channels")
        let count = try Self.storageCount(inputChannels: inputChannels, outputChannels: outputChannels, taps: taps,
                                          square: square)
        try require(values.count == count && (count == 0 || values.baseAddress != nil), Self.name,
                    "\(values.count) values given, \(count) expected for \(taps) taps\(square ? " square" : ""), "
                        + "\(inputChannels) input and \(outputChannels) output channels")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.taps = taps
        self.square = square
        self.splitHalves = splitHalves
        self.storage = WeightStorage(borrowing: values, owner: owner)
    }

    /// From filters packed for im2col (a kernel with a span, `LineWinograd.span(of:)`, one group).
    public init(_ packed: PackedConv2DWeights, context: KernelContext = .singleThreaded) throws {
        guard let (taps, span) = LineWinograd.span(of: packed.kernel), packed.groups == 1 else {
            throw KernelError.invalidArgument(kernel: Self.name, message: "needs a 1xk or kx1 kernel (k = 3, 5 or 7) "
                                              + "or a 5x5 one, with one group, got kernel \(packed.kernel) in "
                                              + "\(packed.groups) groups")
        }
        let (inputs, outputs) = (packed.inputChannelsPerGroup, packed.outputChannels)
        self = try packed.storage.withUnsafeBufferPointer {
            try LineWinogradWeights(source: $0, taps: taps, square: span == .square, inputs: inputs, outputs: outputs,
                                    strides: (output: 1, channel: outputs, tap: inputs * outputs), context: context)
        }
    }

    /// From Keras's HWIO kernel ([1, k], [k, 1] or [k, k], then [inputChannels, outputChannels]).
    public init(hwio: UnsafeBufferPointer<Float>, taps: Int, square: Bool = false, inputChannels: Int,
                outputChannels: Int, context: KernelContext = .singleThreaded) throws {
        try self.init(source: hwio, taps: taps, square: square, inputs: inputChannels, outputs: outputChannels,
                      strides: (output: 1, channel: outputChannels, tap: inputChannels * outputChannels), context: context)
    }

    /// From ONNX's OIHW kernel ([outputChannels, inputChannels] then [1, k], [k, 1] or [k, k]).
    public init(oihw: UnsafeBufferPointer<Float>, taps: Int, square: Bool = false, inputChannels: Int,
                outputChannels: Int, context: KernelContext = .singleThreaded) throws {
        let area = square ? taps * taps : taps
        try self.init(source: oihw, taps: taps, square: square, inputs: inputChannels, outputs: outputChannels,
                      strides: (output: area * inputChannels, channel: area, tap: 1), context: context)
    }

    /// Tap t (row-major over the kernel) of the filter from input channel c to output o is
    /// source[o·s.output + c·s.channel + t·s.tap]. Point p of the pair is Σ_t C[p][t]·tap t
    /// (`LineWinogradTransforms.filterCoefficients`), in double, rounded once to float.
    private init(source: UnsafeBufferPointer<Float>, taps kernelTaps: Int, square: Bool, inputs: Int, outputs: Int,
                 strides: (output: Int, channel: Int, tap: Int), context: KernelContext) throws {
        let transforms = try Self.requireTaps(kernelTaps, square: square)
        let taps = square ? kernelTaps * kernelTaps : kernelTaps
        try require(inputs > 0 && outputs > 0, Self.name, "\(inputs) input and \(outputs) output channels")
        try requireCapacity(source.count, try elementCount([taps, inputs, outputs], Self.name), Self.name, "kernel")
        let storageCount = try Self.storageCount(inputChannels: inputs, outputChannels: outputs, taps: kernelTaps,
                                                 square: square)
        let points = Self.points(taps: kernelTaps, square: square)
        let pointStride = storageCount / points
        let layout = PanelLayout(depth: inputs)
        self.storage = WeightStorage(count: storageCount) { destination in
            guard let source = source.baseAddress, let destination = destination.baseAddress else { return }
            WinogradWeights.zeroPadding(destination, points: points, pointStride: pointStride, inputs: inputs,
                                        outputs: outputs)
            let filter = transforms.filterCoefficients(square: square)
            // Input channels split across threads; each writes its own rows of every point's matrix,
            // a run of 16 output channels at a time (runs never straddle a panel's half). The sum
            // runs over taps in order for every output, so the result does not depend on threads.
            context.forEachChunk(inputs, minimumChunk: 1) { channels in
                withUnsafeTemporaryAllocation(of: Double.self, capacity: (taps + 1) * outputs) { work in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: outputs) { rounded in
                        guard let line = work.baseAddress, let row = rounded.baseAddress else { return }
                        let sum = line + taps * outputs
                        for channel in channels {
                            for tap in 0..<taps {
                                for output in 0..<outputs {
                                    line[tap * outputs + output] = Double(
                                        source[output * strides.output + channel * strides.channel + tap * strides.tap])
                                }
                            }
                            for point in 0..<points {
                                sum.update(repeating: 0, count: outputs)
                                for tap in 0..<taps {
                                    let (coefficient, values) = (filter[point * taps + tap], line + tap * outputs)
                                    for output in 0..<outputs { sum[output] += coefficient * values[output] }
                                }
                                for output in 0..<outputs { row[output] = Float(sum[output]) }
                                let target = destination + point * pointStride
                                for first in stride(from: 0, to: outputs, by: 16) {
                                    (target + layout.offset(depth: channel, column: first))
                                        .update(from: row + first, count: min(16, outputs - first))
                                }
                            }
                        }
                    }
                }
            }
        }
        self.inputChannels = inputs
        self.outputChannels = outputs
        self.taps = kernelTaps
        self.square = square
        self.splitHalves = layout.splitHalves
    }

    /// Throws unless these weights were transformed for `geometry`.
    func check(against geometry: Conv2DGeometry) throws {
        let span = LineWinograd.span(of: geometry.kernel)
        try require(inputChannels == geometry.inputChannels && outputChannels == geometry.outputChannels
                     && taps == span?.taps && square == (span?.span == .square), "conv2d",
                     "line Winograd weights (\(taps) taps\(square ? " square" : ""), \(inputChannels) in, "
                        + "\(outputChannels) out) do not match the geometry (kernel \(geometry.kernel), "
                        + "\(geometry.inputChannels) in, \(geometry.outputChannels) out)")
    }
}
