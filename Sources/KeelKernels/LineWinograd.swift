/// Winograd along one axis for 1×k and k×1 convolutions, stride 1, NHWC: the factorised 7×7 and
/// 3×3 layers of Inception-style networks, which im2col runs at the GEMM's peak and so can only
/// get faster by multiplying less. F(4, k) makes four outputs of a k-tap line from k + 3 input
/// pixels with k + 3 multiplies per channel pair instead of 4k (k = 7: 10 instead of 28). Tiles
/// run through the same block pipeline as the 2-D tiles (`WinogradPipeline`): each line of k + 3
/// input pixels is transformed into k + 3 points over all channels, one GEMM per point against
/// the transformed filter (`LineWinogradWeights`), and each tile's products are transformed back
/// into its four output pixels with the bias and ReLU applied as they are stored.
import CSIMDKernels

public enum LineWinograd {
    /// Output pixels per tile.
    public static let outputSize = 4
    /// Filter lengths with transforms: n = k + 3 points (6, 8 or 10).
    public static let supportedTaps: ClosedRange<Int> = 3...7

    /// The filter's length along its line: k for a 1×k or k×1 filter with odd k in `supportedTaps`,
    /// nil for any other kernel.
    public static func taps(of kernel: Size2D) -> Int? {
        let taps = kernel.height == 1 ? kernel.width : kernel.width == 1 ? kernel.height : 0
        return supportedTaps.contains(taps) && taps % 2 == 1 ? taps : nil
    }

    /// Whether a convolution can run here: a 1×k or k×1 line (`taps(of:)`), stride 1, no dilation,
    /// one group, NHWC (the transforms run over contiguous channels).
    public static func supports(_ geometry: Conv2DGeometry) -> Bool {
        taps(of: geometry.kernel) != nil && geometry.stride == .one && geometry.dilation == .one && geometry.groups == 1
            && geometry.layout == .nhwc
    }

    /// Whether it should: when im2col's multiplies, k per output pixel, cost at least as much as
    /// the line's, k + 3 per tile, with the transforms' share. Both stream their filter once per
    /// call, counted as `filterStreamPixels` more pixels or tiles, so a batch-1 layer with few
    /// tiles keeps im2col. The transforms cost the products about `transformChannels` / c more
    /// (c the fewer of the input and output channels): measured one thread, per layer against
    /// im2col on the same product (17×17 and 35×35, batch 1 and 8, 16–128 channels), 1×7 broke
    /// even near 32 channels and ran 1.8–2.1× faster at 128; 1×3 broke even near 48–64 channels
    /// and ran 1.24–1.44× faster at 128; this estimate fitted every one of those ratios within 0.1.
    public static func pays(_ geometry: Conv2DGeometry) -> Bool {
        guard supports(geometry), let taps = taps(of: geometry.kernel) else { return false }
        let channels = min(geometry.inputChannels, geometry.outputChannels)
        guard channels >= Winograd.minimumChannels else { return false }
        let tiling = LineTiling(geometry)
        let pixels = geometry.batch * geometry.output.height * geometry.output.width
        let im2col = Double(taps * (pixels + filterStreamPixels))
        let line = Double(tiling.points * (tiling.tiles + filterStreamPixels))
            * (1 + transformChannels / Double(channels))
        return im2col >= line
    }

    static let transformChannels = 40.0
    /// Half the 2-D tiles' `Winograd.filterStreamTiles`: with 26, Inception's 8×8 1×3 and 3×1
    /// layers at batch 1 (384 and 192–256 channels) kept im2col, and on the line they ran 1.2–1.4×
    /// faster (Zen 4, per-layer sums: InceptionV3's eight 2.42 → 1.62 ms on two threads, 4.39 →
    /// 3.05 on one; InceptionResNetV2's twenty 2.0 → 1.6). Its 5×5 ones at batch 1 (224² input)
    /// stay on im2col, where the line ran 10% slower.
    static let filterStreamPixels = 13

    static func blocking(_ geometry: Conv2DGeometry) -> WinogradBlocking {
        let tiling = LineTiling(geometry)
        return WinogradBlocking(points: tiling.points, tiles: tiling.tiles, inputChannels: geometry.inputChannels,
                                outputChannels: geometry.outputChannels)
    }

    /// Floats of scratch for `threads` threads (with less, threads share blocks).
    public static func scratchSize(for geometry: Conv2DGeometry, threads: Int = 1) -> Int {
        supports(geometry) ? blocking(geometry).scratchSize(threads: threads) : 0
    }
}

/// Where a line convolution's tiles lie: the axis the filter runs along, the lines across it,
/// four output pixels per tile. Tiles are counted image by image, then row by row for a 1×k
/// filter (tiles of one output row side by side) and tile row by column for a k×1 filter
/// (neighbouring tiles read neighbouring columns of the same input rows).
struct LineTiling {
    let geometry: Conv2DGeometry
    let taps: Int
    let alongWidth: Bool

    init(_ geometry: Conv2DGeometry) {
        self.geometry = geometry
        self.taps = LineWinograd.taps(of: geometry.kernel) ?? 1
        self.alongWidth = geometry.kernel.height == 1
    }

    var points: Int { taps + LineWinograd.outputSize - 1 }
    var outputLength: Int { alongWidth ? geometry.output.width : geometry.output.height }
    var tilesPerLine: Int { (outputLength + LineWinograd.outputSize - 1) / LineWinograd.outputSize }
    var linesPerImage: Int { alongWidth ? geometry.output.height : geometry.output.width }
    var tiles: Int { geometry.batch * linesPerImage * tilesPerLine }

    /// Tile `tile`'s image, line (output row for 1×k, column for k×1) and first output pixel along it.
    func origin(_ tile: Int) -> (image: Int, line: Int, start: Int) {
        let perImage = linesPerImage * tilesPerLine
        let image = tile / perImage
        let within = tile - image * perImage
        let size = LineWinograd.outputSize
        return alongWidth ? (image, within / tilesPerLine, (within % tilesPerLine) * size)
            : (image, within % linesPerImage, (within / linesPerImage) * size)
    }
}

/// The transform matrices of F(4, k), built from the interpolation points 0, ±1, ±2, ±1/2, ±3/2
/// (as many as n − 1 = k + 2 needs) and ∞ by Toom-Cook: with V the n×n evaluation matrix,
/// Bᵀ = (V⁻¹)ᵀ, G the n×k and Aᵀ the 4×n evaluations. Each row of Bᵀ is scaled to a largest entry
/// of 1 and its G row by the inverse, so the transforms of the activations stay small. Measured
/// in float against a double reference (192 channels), the error is 5× direct summation's at
/// n = 6 (the 2-D F(4×4, 3×3)'s per axis), 5× at 8 and 20× at 10.
struct LineWinogradTransforms: Sendable {
    let taps: Int
    let points: Int
    /// Bᵀ, points × points, row-major.
    let input: [Float]
    /// Aᵀ, 4 × points, row-major.
    let output: [Float]
    /// G, points × taps, row-major, in double: filters are transformed in double and rounded once.
    let filter: [Double]

    static let interpolationPoints: [Double] = [0, 1, -1, 2, -2, 0.5, -0.5, 1.5, -1.5]

    static let byTaps: [Int: LineWinogradTransforms] = Dictionary(
        uniqueKeysWithValues: LineWinograd.supportedTaps.filter { $0 % 2 == 1 }.map { ($0, LineWinogradTransforms(taps: $0)) })

    static func forTaps(_ taps: Int) -> LineWinogradTransforms? { byTaps[taps] }

    private init(taps: Int) {
        let size = LineWinograd.outputSize
        let points = taps + size - 1
        let finite = Array(Self.interpolationPoints.prefix(points - 1))
        // Rows: the polynomial's coefficients evaluated at each finite point, and its leading one (∞).
        func evaluation(_ columns: Int) -> [[Double]] {
            finite.map { point in (0..<columns).map { power in (0..<power).reduce(1.0) { value, _ in value * point } } }
                + [(0..<columns).map { $0 == columns - 1 ? 1.0 : 0.0 }]
        }
        let inverse = Self.inverted(evaluation(points))
        let kernel = evaluation(taps)
        let outputs = evaluation(size)
        var input = [Float](repeating: 0, count: points * points)
        var filter = [Double](repeating: 0, count: points * taps)
        for row in 0..<points {
            let line = (0..<points).map { inverse[$0][row] }
            let scale = line.map(abs).max() ?? 1
            for column in 0..<points {
                let value = line[column] / scale
                input[row * points + column] = abs(value) < 1e-12 ? 0 : Float(value)
            }
            for tap in 0..<taps { filter[row * taps + tap] = kernel[row][tap] * scale }
        }
        self.taps = taps
        self.points = points
        self.input = input
        self.output = (0..<size).flatMap { row in (0..<points).map { Float(outputs[$0][row]) } }
        self.filter = filter
    }

    /// The inverse of a small well-conditioned matrix, by Gauss-Jordan elimination with partial pivoting.
    private static func inverted(_ matrix: [[Double]]) -> [[Double]] {
        let count = matrix.count
        var rows = matrix.enumerated().map { index, row in row + (0..<count).map { $0 == index ? 1.0 : 0.0 } }
        for column in 0..<count {
            let pivot = (column..<count).max { abs(rows[$0][column]) < abs(rows[$1][column]) } ?? column
            rows.swapAt(column, pivot)
            let divisor = rows[column][column]
            rows[column] = rows[column].map { $0 / divisor }
            for other in 0..<count where other != column && rows[other][column] != 0 {
                let factor = rows[other][column]
                rows[other] = zip(rows[other], rows[column]).map { $0 - factor * $1 }
            }
        }
        return rows.map { Array($0[count...]) }
    }
}

/// One validated line-Winograd call.
struct LineWinogradRun {
    let input: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    /// ReLU in the output transform; another activation with a C form on each tile's pixels after it.
    let activation: UnaryOperation
    let output: UnsafeMutablePointer<Float>
    /// Floats between consecutive output pixels (the output channels, or more in a wider buffer).
    let pixelStride: Int
    let geometry: Conv2DGeometry
    let transforms: LineWinogradTransforms
    /// The transformed filter, the scratch and the threads.
    let pipeline: WinogradPipeline

    func run() {
        pipeline.run(transformInputs: transformInputs, transformOutputs: transformOutputs)
    }

    /// Each tile's n input pixels, read in place when they lie inside the image and otherwise
    /// copied with zeros for the padding, become its n points.
    func transformInputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, destination: UnsafeMutablePointer<Float>) {
        let tiling = LineTiling(geometry)
        let (height, width, channels, points) = (geometry.input.height, geometry.input.width, geometry.inputChannels,
                                                 tiling.points)
        let (before, across) = tiling.alongWidth ? (geometry.padding.left, geometry.padding.top)
            : (geometry.padding.top, geometry.padding.left)
        let (length, crossLength) = tiling.alongWidth ? (width, height) : (height, width)
        let alongStride = tiling.alongWidth ? channels : width * channels
        withUnsafeTemporaryAllocation(of: Float.self, capacity: points * channels) { buffer in
            guard let patch = buffer.baseAddress else { return }
            transforms.input.withUnsafeBufferPointer { matrix in
                guard let matrix = matrix.baseAddress else { return }
                for local in tiles {
                    let (image, line, start) = tiling.origin(blockStart + local)
                    let (first, cross) = (start - before, line - across)
                    // Pixel `index` of the line in the input, or nil outside it.
                    func pixel(_ index: Int) -> UnsafePointer<Float>? {
                        guard index >= 0 && index < length && cross >= 0 && cross < crossLength else { return nil }
                        let (row, column) = tiling.alongWidth ? (cross, index) : (index, cross)
                        return input + ((image * height + row) * width + column) * channels
                    }
                    var source: UnsafePointer<Float>
                    var stride = alongStride
                    if first >= 0 && first + points <= length, let inside = pixel(first) {
                        source = inside
                    } else {
                        for index in 0..<points {
                            let target = patch + index * channels
                            if let value = pixel(first + index) {
                                target.update(from: value, count: channels)
                            } else {
                                target.update(repeating: 0, count: channels)
                            }
                        }
                        (source, stride) = (UnsafePointer(patch), channels)
                    }
                    LineWinograd.transform(source, stride: stride, channels: channels, matrix: matrix, rows: points,
                                           columns: points, bias: nil, relu: false,
                                           destination: destination + local * channels,
                                           destinationStride: blockCount * channels)
                }
            }
        }
    }

    /// Each tile's n products become its output pixels inside the image, bias and ReLU applied.
    func transformOutputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, source: UnsafePointer<Float>) {
        let tiling = LineTiling(geometry)
        let (height, width, channels) = (geometry.output.height, geometry.output.width, geometry.outputChannels)
        let alongStride = tiling.alongWidth ? pixelStride : width * pixelStride
        transforms.output.withUnsafeBufferPointer { matrix in
            guard let matrix = matrix.baseAddress else { return }
            for local in tiles {
                let (image, line, start) = tiling.origin(blockStart + local)
                let (row, column) = tiling.alongWidth ? (line, start) : (start, line)
                let (pixels, target) = (min(LineWinograd.outputSize, tiling.outputLength - start),
                                        output + ((image * height + row) * width + column) * pixelStride)
                LineWinograd.transform(source + local * channels, stride: blockCount * channels, channels: channels,
                                       matrix: matrix, rows: pixels, columns: tiling.points, bias: bias,
                                       relu: activation == .relu, destination: target, destinationStride: alongStride)
                if activation != .identity && activation != .relu {
                    _ = applyVectorActivation(input: target, output: target, rows: pixels, columns: channels,
                                              rowStride: alongStride, bias: nil, direction: .perColumn,
                                              activation: activation, context: .singleThreaded)
                }
            }
        }
    }
}

extension LineWinograd {
    /// destination[p·destinationStride + c] = Σ_j matrix[p·columns + j]·source[j·stride + c] (+ bias,
    /// then ReLU) for p < rows and c < channels: CSIMDKernels' vector body when a SIMD level is in
    /// use, the same FMAs in the same order one channel at a time otherwise.
    static func transform(_ source: UnsafePointer<Float>, stride: Int, channels: Int, matrix: UnsafePointer<Float>,
                          rows: Int, columns: Int, bias: UnsafePointer<Float>?, relu: Bool,
                          destination: UnsafeMutablePointer<Float>, destinationStride: Int) {
        if let simd = KernelTable.current.line_transform {
            return simd(source, stride, channels, matrix, Int32(rows), Int32(columns), bias, relu ? 1 : 0,
                        destination, destinationStride)
        }
        for channel in 0..<channels {
            for row in 0..<rows {
                var sum: Float = 0
                for column in 0..<columns where matrix[row * columns + column] != 0 {
                    sum.addProduct(matrix[row * columns + column], source[column * stride + channel])
                }
                if let bias { sum += bias[channel] }
                // As max(0, x) in the vector body: a NaN stays NaN.
                if relu && sum < 0 { sum = 0 }
                destination[row * destinationStride + channel] = sum
            }
        }
    }
}
