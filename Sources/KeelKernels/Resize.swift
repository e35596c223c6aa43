/// Image resizing (ONNX Resize over height and width; Keras UpSampling2D and Resizing): each
/// axis gets a table of input taps and weights per output position, and an output pixel is
/// the weighted sum over the product of its row and column taps. Nearest, bilinear and
/// antialiased bilinear differ only in their tables.
import Foundation

/// How an output position maps back into the input (ONNX `coordinate_transformation_mode`).
public enum ResizeCoordinates: Sendable, Equatable {
    case halfPixel
    case halfPixelSymmetric
    case pytorchHalfPixel
    case alignCorners
    case asymmetric
    /// TensorFlow's nearest-neighbour mapping (Keras UpSampling2D via tf2onnx): half-pixel
    /// centres without the -0.5 shift back.
    case tfHalfPixelForNearest
    /// Resizes the normalised region [start, end] of the axis; positions outside the input take
    /// the extrapolation value.
    case cropAndResize(start: Float, end: Float)
}

/// How nearest-neighbour resizing rounds a fractional position (ONNX `nearest_mode`).
public enum NearestRounding: Sendable, Equatable {
    case roundPreferFloor, roundPreferCeil, floor, ceil
}

public enum ResizeInterpolation: Sendable, Equatable {
    case nearest(NearestRounding)
    case linear
    /// Linear with a triangle filter widened by 1/scale when shrinking, so every input pixel
    /// contributes (ONNX `antialias`).
    case antialiasedLinear
    /// Keys' cubic convolution over the 4 pixels around the position, `coefficient` its `a` (ONNX
    /// `cubic_coeff_a`: −0.75 as PyTorch's bicubic, −0.5 as TensorFlow's). Taps past an edge repeat
    /// the edge pixel, or with `excludeOutside` weigh 0 and the others are renormalised.
    case cubic(coefficient: Float, excludeOutside: Bool)
}

/// One resized axis.
public struct ResizeAxis: Sendable, Equatable {
    public var input: Int
    public var output: Int
    /// What the coordinate mapping divides by: output/input, unless the model gave scales.
    public var scale: Double
    public var coordinates: ResizeCoordinates

    public init(input: Int, output: Int, scale: Double? = nil, coordinates: ResizeCoordinates = .halfPixel) {
        self.input = input
        self.output = output
        self.scale = scale ?? Double(output) / Double(max(input, 1))
        self.coordinates = coordinates
    }

    /// The input position output position `index` samples.
    func sourcePosition(_ index: Int) -> Double {
        let (position, input, output) = (Double(index), Double(self.input), Double(self.output))
        switch coordinates {
        case .halfPixel:
            return (position + 0.5) / scale - 0.5
        case .halfPixelSymmetric:
            // Centres the resized grid when the output extent was rounded down from input·scale.
            let adjustment = output / (scale * input)
            return input / 2 * (1 - adjustment) + (position + 0.5) / scale - 0.5
        case .pytorchHalfPixel:
            return self.output > 1 ? (position + 0.5) / scale - 0.5 : 0
        case .alignCorners:
            return self.output > 1 ? position * (input - 1) / (output - 1) : 0
        case .asymmetric:
            return position / scale
        case .tfHalfPixelForNearest:
            return (position + 0.5) / scale
        case let .cropAndResize(start, end):
            let (from, to) = (Double(start), Double(end))
            return self.output > 1 ? from * (input - 1) + position * (to - from) * (input - 1) / (output - 1)
                                   : 0.5 * (from + to) * (input - 1)
        }
    }
}

/// The taps of every output position along one axis: output o reads
/// `indices[offsets[o]..<offsets[o+1]]` with the matching weights; an output marked outside
/// takes the extrapolation value.
struct ResizeTaps {
    var offsets: [Int] = [0]
    var indices: [Int] = []
    var weights: [Float] = []
    var outside: [Bool] = []

    init(_ axis: ResizeAxis, _ interpolation: ResizeInterpolation) {
        let last = axis.input - 1
        for index in 0..<axis.output {
            let position = axis.sourcePosition(index)
            var isOutside = false
            if case .cropAndResize = axis.coordinates { isOutside = position < 0 || position > Double(last) }
            outside.append(isOutside)
            if !isOutside { appendTaps(position, axis, interpolation) }
            offsets.append(indices.count)
        }
    }

    private mutating func appendTaps(_ position: Double, _ axis: ResizeAxis, _ interpolation: ResizeInterpolation) {
        let last = axis.input - 1
        switch interpolation {
        case .nearest(let rounding):
            let rounded: Double
            switch rounding {
            case .roundPreferFloor: rounded = (position - 0.5).rounded(.up)
            case .roundPreferCeil: rounded = (position + 0.5).rounded(.down)
            case .floor: rounded = position.rounded(.down)
            case .ceil: rounded = position.rounded(.up)
            }
            indices.append(Int(min(max(rounded, 0), Double(last))))
            weights.append(1)
        case .linear:
            let clamped = min(max(position, 0), Double(last))
            let low = Int(clamped.rounded(.down))
            let high = min(low + 1, last)
            let fraction = Float(clamped - Double(low))
            // Both taps count even when one weighs 0 (0·NaN is NaN, as in ONNX Runtime), except at
            // the last pixel, where both are that pixel: one tap then, so an infinity stays one
            // rather than becoming inf + 0·inf = NaN (ONNX Runtime weighs it 0.5 + 0.5).
            if high == low {
                indices.append(low)
                weights.append(1)
            } else {
                indices += [low, high]
                weights += [1 - fraction, fraction]
            }
        case let .cubic(coefficient, excludeOutside):
            let a = Double(coefficient)
            // Keys' kernel at distance d: 1 at 0, 0 at 1 and 2, zero past 2.
            func weight(_ distance: Double) -> Double {
                let d = abs(distance)
                if d <= 1 { return ((a + 2) * d - (a + 3)) * d * d + 1 }
                if d < 2 { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a }
                return 0
            }
            let base = Int(position.rounded(.down))
            let taps = (base - 1)...(base + 2)
            var tapWeights = taps.map { weight(position - Double($0)) }
            if excludeOutside {
                for (slot, tap) in taps.enumerated() where tap < 0 || tap > last { tapWeights[slot] = 0 }
                let total = tapWeights.reduce(0, +)
                if total != 0 { tapWeights = tapWeights.map { $0 / total } }
            }
            for (tap, tapWeight) in zip(taps, tapWeights) {
                indices.append(min(max(tap, 0), last))
                weights.append(Float(tapWeight))
            }
        case .antialiasedLinear:
            // A triangle of radius 1, or 1/scale when shrinking, centred on the position; taps past
            // an edge repeat the edge pixel, and the weights are normalised to sum to 1.
            let support = axis.scale < 1 ? 1 / axis.scale : 1
            let first = Int((position - support).rounded(.down)) + 1
            let end = Int((position + support).rounded(.up))
            let start = weights.count
            var total: Float = 0
            for tap in first..<max(first, end) {
                let weight = Float(max(0, 1 - abs(Double(tap) - position) / support))
                guard weight > 0 else { continue }
                indices.append(min(max(tap, 0), last))
                weights.append(weight)
                total += weight
            }
            if total > 0 {
                for index in start..<weights.count { weights[index] /= total }
            }
        }
    }
}

/// A resize of [N, H, W, C] or [N, C, H, W] images over height and width.
public struct ResizeGeometry: Sendable, Equatable {
    public var batch: Int
    public var channels: Int
    public var height: ResizeAxis
    public var width: ResizeAxis
    public var interpolation: ResizeInterpolation
    public var layout: ActivationLayout
    public var extrapolationValue: Float

    public init(batch: Int, channels: Int, height: ResizeAxis, width: ResizeAxis,
                interpolation: ResizeInterpolation = .nearest(.roundPreferFloor), layout: ActivationLayout = .nhwc,
                extrapolationValue: Float = 0) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.interpolation = interpolation
        self.layout = layout
        self.extrapolationValue = extrapolationValue
    }
}

public enum Resize {
    public static func apply(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                             geometry: ResizeGeometry, context: KernelContext = .singleThreaded) throws {
        let name = "resize"
        let (height, width) = (geometry.height, geometry.width)
        try require(geometry.batch >= 0 && geometry.channels >= 0 && height.output >= 0 && width.output >= 0, name,
                    "negative extent")
        try require(height.input > 0 && width.input > 0, name, "input \(height.input)×\(width.input) must not be empty")
        try require(height.scale > 0 && width.scale > 0 && height.scale.isFinite && width.scale.isFinite, name,
                    "scales \(height.scale), \(width.scale) must be positive")
        let inputCount = try elementCount([geometry.batch, geometry.channels, height.input, width.input], name)
        let outputCount = try elementCount([geometry.batch, geometry.channels, height.output, width.output], name)
        try requireCapacity(input.count, inputCount, name, "input")
        try requireCapacity(output.count, outputCount, name, "output")
        guard outputCount > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        let rows = ResizeTaps(height, geometry.interpolation)
        let columns = ResizeTaps(width, geometry.interpolation)
        let (channels, fill) = (geometry.channels, geometry.extrapolationValue)
        switch geometry.layout {
        case .nchw:
            let (inputPlane, outputPlane) = (height.input * width.input, height.output * width.output)
            context.forEachChunk(geometry.batch * channels, minimumChunk: max(1, parallelGrain / outputPlane)) { planes in
                for plane in planes {
                    let from = source + plane * inputPlane
                    let to = destination + plane * outputPlane
                    for row in 0..<height.output {
                        for column in 0..<width.output {
                            var value = fill
                            if !rows.outside[row] && !columns.outside[column] {
                                value = 0
                                for rowTap in rows.offsets[row]..<rows.offsets[row + 1] {
                                    let line = from + rows.indices[rowTap] * width.input
                                    var sum: Float = 0
                                    for columnTap in columns.offsets[column]..<columns.offsets[column + 1] {
                                        sum += columns.weights[columnTap] * line[columns.indices[columnTap]]
                                    }
                                    value += rows.weights[rowTap] * sum
                                }
                            }
                            to[row * width.output + column] = value
                        }
                    }
                }
            }
        case .nhwc:
            let items = geometry.batch * height.output
            context.forEachChunk(items, minimumChunk: max(1, parallelGrain / max(width.output * channels, 1))) { range in
                for item in range {
                    let (image, row) = item.quotientAndRemainder(dividingBy: height.output)
                    let from = source + image * height.input * width.input * channels
                    for column in 0..<width.output {
                        let to = destination + (item * width.output + column) * channels
                        guard !rows.outside[row] && !columns.outside[column] else {
                            to.update(repeating: fill, count: channels)
                            continue
                        }
                        if channels <= 4 {
                            // An image's few channels add up in one register: through `to` every tap
                            // was a load and a store per channel (CrossViT's 3-channel bicubic input
                            // resize, 12 ms at batch 8).
                            var sum = SIMD4<Float>()
                            for rowTap in rows.offsets[row]..<rows.offsets[row + 1] {
                                for columnTap in columns.offsets[column]..<columns.offsets[column + 1] {
                                    let weight = rows.weights[rowTap] * columns.weights[columnTap]
                                    let pixel = from + (rows.indices[rowTap] * width.input + columns.indices[columnTap]) * channels
                                    var values = SIMD4<Float>()
                                    for channel in 0..<channels { values[channel] = pixel[channel] }
                                    sum += weight * values
                                }
                            }
                            for channel in 0..<channels { to[channel] = sum[channel] }
                            continue
                        }
                        to.update(repeating: 0, count: channels)
                        for rowTap in rows.offsets[row]..<rows.offsets[row + 1] {
                            for columnTap in columns.offsets[column]..<columns.offsets[column + 1] {
                                let weight = rows.weights[rowTap] * columns.weights[columnTap]
                                let pixel = from + (rows.indices[rowTap] * width.input + columns.indices[columnTap]) * channels
                                for channel in 0..<channels { to[channel] += weight * pixel[channel] }
                            }
                        }
                    }
                }
            }
        }
    }
}
