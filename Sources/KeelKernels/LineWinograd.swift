/// Winograd F(4, k) along each axis a filter spans: 1×k and k×1 convolutions (the factorised 7×7
/// and 3×3 layers of Inception-style networks) along their line, and k×k ones (Inception's 5×5) along
/// both axes, stride 1, NHWC. im2col runs these at the GEMM's peak, so they can only get faster by
/// multiplying less. Along one axis F(4, k) makes four outputs from k + 3 input pixels with k + 3
/// multiplies per channel pair instead of 4k (k = 7: 10 instead of 28); a k×k filter takes the
/// product of the two, a 4×4 tile from (k + 3)² points (k = 5: 64 instead of 400). Tiles run through
/// the same block pipeline as the 3×3 tiles (`WinogradPipeline`): each tile's input pixels are
/// transformed into its points over all channels (a k×k tile down its columns, then along its rows,
/// with the line's matrix), one GEMM per point against the transformed filter
/// (`LineWinogradWeights`), and each tile's products are transformed back into its output pixels
/// with the bias and ReLU applied as they are stored.
import CSIMDKernels

/// The axes a filter's taps run along, as the F(4, k) transforms see them.
public enum WinogradSpan: Sendable, Equatable {
    /// 1×k: along each output row.
    case width
    /// k×1: down each output column.
    case height
    /// k×k: both, tiles of 4×4 outputs.
    case square
}

public enum LineWinograd {
    /// Output pixels per tile along each axis it spans.
    public static let outputSize = 4
    /// Filter lengths with transforms: n = k + 3 points (6, 8 or 10).
    public static let supportedTaps: ClosedRange<Int> = 3...7
    /// Square filters the tiles take: 5×5, whose 64 points per 16 outputs measured 8–18× im2col's
    /// largest error against a double reference (16–48 input channels), as F(4, 7)'s lines do
    /// (13–14×). 3×3 filters have their own tiles (`Winograd`); a 7×7 tile's 100 points would
    /// round like F(4, 7) twice over.
    public static let squareTaps = 5...5

    /// The filter's taps along each axis and the axes they span: 1×k, k×1 (odd k in
    /// `supportedTaps`) or k×k (k in `squareTaps`); nil for any other kernel.
    public static func span(of kernel: Size2D) -> (taps: Int, span: WinogradSpan)? {
        if kernel.height == 1, supportedTaps.contains(kernel.width), kernel.width % 2 == 1 { return (kernel.width, .width) }
        if kernel.width == 1, supportedTaps.contains(kernel.height), kernel.height % 2 == 1 { return (kernel.height, .height) }
        if kernel.height == kernel.width, squareTaps.contains(kernel.width) { return (kernel.width, .square) }
        return nil
    }

    /// The filter's taps along each axis it spans (`span(of:)`), nil for any other kernel.
    public static func taps(of kernel: Size2D) -> Int? { span(of: kernel)?.taps }

    /// Whether a convolution can run here: a kernel with a span (`span(of:)`), stride 1, no
    /// dilation, one group, NHWC (the transforms run over contiguous channels).
    public static func supports(_ geometry: Conv2DGeometry) -> Bool {
        span(of: geometry.kernel) != nil && geometry.stride == .one && geometry.dilation == .one && geometry.groups == 1
            && geometry.layout == .nhwc
    }

    /// Whether it should: when im2col's multiplies, k (k² for a square) per output pixel, cost at
    /// least as much as the tiles', their points per tile, with the transforms' share. Both stream
    /// their filter once per call, counted as `filterStreamPixels` more pixels or tiles, so a
    /// batch-1 layer with few tiles keeps im2col. The transforms cost the products about
    /// `transformChannels` / c more (c the fewer of the input and output channels): measured one
    /// thread, per layer against im2col on the same product (17×17 and 35×35, batch 1 and 8, 16–128
    /// channels), 1×7 broke even near 32 channels and ran 1.8–2.1× faster at 128; 1×3 broke even
    /// near 48–64 channels and ran 1.24–1.44× faster at 128; this estimate fitted every one of those
    /// ratios within 0.1. A square tile transforms each point twice (down, then along), so twice that.
    /// Only with a vector transform in the kernel table: the portable one, a scalar loop per channel,
    /// took 7.2 ms on Inception's 5×5 layer where im2col on OpenBLAS took 1.2 (1×7 on 17×17, 128
    /// channels: 1.8 ms), so CPUs without one (KEEL_SIMD=generic, Arm) keep im2col.
    public static func pays(_ geometry: Conv2DGeometry) -> Bool {
        guard supports(geometry), hasVectorTransforms else { return false }
        let channels = min(geometry.inputChannels, geometry.outputChannels)
        guard channels >= Winograd.minimumChannels else { return false }
        let tiling = LineTiling(geometry)
        let pixels = geometry.batch * geometry.output.height * geometry.output.width
        let kernelTaps = geometry.kernel.height * geometry.kernel.width
        let im2col = Double(kernelTaps * (pixels + filterStreamPixels))
        let passes = tiling.span == .square ? 2.0 : 1.0
        let tiles = Double(tiling.points * (tiling.tiles + filterStreamPixels))
            * (1 + passes * transformChannels / Double(channels))
        return im2col >= tiles
    }

    /// Whether this CPU's kernel table has the vector line transform `pays` needs.
    public static var hasVectorTransforms: Bool { KernelTable.current.line_transform != nil }

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

/// Where a convolution's tiles lie: four output pixels along each axis the filter spans, one
/// across any other. Tiles are counted image by image, then row-major: a 1×k filter's tiles of one
/// output row side by side, a k×1 filter's tile row by column (neighbouring tiles read neighbouring
/// columns of the same input rows), a square's 4×4 tiles along each row of tiles.
struct LineTiling {
    let geometry: Conv2DGeometry
    let taps: Int
    let span: WinogradSpan

    init(_ geometry: Conv2DGeometry) {
        self.geometry = geometry
        (taps, span) = LineWinograd.span(of: geometry.kernel) ?? (1, .width)
    }

    /// Points along each axis the tile spans: k + 3.
    var pointsPerAxis: Int { taps + LineWinograd.outputSize - 1 }
    var points: Int { span == .square ? pointsPerAxis * pointsPerAxis : pointsPerAxis }
    /// Output pixels a tile covers down and across.
    var tileHeight: Int { span == .width ? 1 : LineWinograd.outputSize }
    var tileWidth: Int { span == .height ? 1 : LineWinograd.outputSize }
    /// Input pixels a tile reads down and across.
    var inputHeight: Int { span == .width ? 1 : pointsPerAxis }
    var inputWidth: Int { span == .height ? 1 : pointsPerAxis }
    var tileRowsPerImage: Int { (geometry.output.height + tileHeight - 1) / tileHeight }
    var tileColumnsPerImage: Int { (geometry.output.width + tileWidth - 1) / tileWidth }
    var tiles: Int { geometry.batch * tileRowsPerImage * tileColumnsPerImage }

    /// Tile `tile`'s image and first output pixel.
    func origin(_ tile: Int) -> (image: Int, row: Int, column: Int) {
        let perImage = tileRowsPerImage * tileColumnsPerImage
        let image = tile / perImage
        let within = tile - image * perImage
        return (image, (within / tileColumnsPerImage) * tileHeight, (within % tileColumnsPerImage) * tileWidth)
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
    /// The SIMD kernels' names for Bᵀ and Aᵀ (`keel_line_matrix`), whose bodies take them as
    /// constants; KEEL_LINE_GENERIC where their copy differs from these (it never has).
    let inputKind: Int32
    let outputKind: Int32

    static let interpolationPoints: [Double] = [0, 1, -1, 2, -2, 0.5, -0.5, 1.5, -1.5]

    static let byTaps: [Int: LineWinogradTransforms] = Dictionary(
        uniqueKeysWithValues: LineWinograd.supportedTaps.filter { $0 % 2 == 1 }.map { ($0, LineWinogradTransforms(taps: $0)) })

    static func forTaps(_ taps: Int) -> LineWinogradTransforms? { byTaps[taps] }

    /// The filter transform as one matrix over the kernel's taps, in double: G for a line
    /// (points × k); for a square G ⊗ G, point (p, q) from tap (a, b) by G[p][a]·G[q][b] (n² × k²),
    /// the down-then-along transform of the tiles written as a single sum.
    func filterCoefficients(square: Bool) -> [Double] {
        guard square else { return filter }
        let (n, k) = (points, taps)
        return (0..<n * n).flatMap { point in
            (0..<k * k).map { tap in filter[(point / n) * k + tap / k] * filter[(point % n) * k + tap % k] }
        }
    }

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
        inputKind = Self.kernelKind(of: self.input, rows: points, columns: points)
        outputKind = Self.kernelKind(of: self.output, rows: size, columns: points)
    }

    /// The kind whose constant matrix in the SIMD kernels is `matrix`, bit for bit.
    private static func kernelKind(of matrix: [Float], rows: Int, columns: Int) -> Int32 {
        let kinds = [KEEL_LINE_INPUT_6, KEEL_LINE_OUTPUT_6, KEEL_LINE_INPUT_8, KEEL_LINE_OUTPUT_8, KEEL_LINE_INPUT_10,
                     KEEL_LINE_OUTPUT_10].map { Int32($0) }
        for kind in kinds {
            var (kernelRows, kernelColumns): (Int32, Int32) = (0, 0)
            guard let values = keel_line_matrix(kind, &kernelRows, &kernelColumns),
                  Int(kernelRows) == rows, Int(kernelColumns) == columns,
                  matrix.indices.allSatisfy({ values[$0].bitPattern == matrix[$0].bitPattern }) else { continue }
            return kind
        }
        return Int32(KEEL_LINE_GENERIC)
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

    /// Each tile's input pixels, read in place when they lie inside the image and otherwise copied
    /// with zeros for the padding, become its points: along the line, or for a square down each of
    /// its n columns and then along each of the n rows of the result.
    func transformInputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, destination: UnsafeMutablePointer<Float>) {
        let tiling = LineTiling(geometry)
        let (height, width, channels) = (geometry.input.height, geometry.input.width, geometry.inputChannels)
        let (rows, columns, points) = (tiling.inputHeight, tiling.inputWidth, tiling.pointsPerAxis)
        let pointStride = blockCount * channels
        let patchCount = rows * columns * channels
        let halfCount = tiling.span == .square ? points * points * channels : 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: patchCount + halfCount) { buffer in
            guard let patch = buffer.baseAddress else { return }
            let half = patch + patchCount
            transforms.input.withUnsafeBufferPointer { matrix in
                guard let matrix = matrix.baseAddress else { return }
                for local in tiles {
                    let (image, row, column) = tiling.origin(blockStart + local)
                    let (top, left) = (row - geometry.padding.top, column - geometry.padding.left)
                    var (source, rowStride) = (input + ((image * height + top) * width + left) * channels, width * channels)
                    if top < 0 || left < 0 || top + rows > height || left + columns > width {
                        for y in 0..<rows {
                            for x in 0..<columns {
                                let target = patch + (y * columns + x) * channels
                                let (inputRow, inputColumn) = (top + y, left + x)
                                if inputRow >= 0 && inputRow < height && inputColumn >= 0 && inputColumn < width {
                                    target.update(from: input + ((image * height + inputRow) * width + inputColumn) * channels,
                                                  count: channels)
                                } else {
                                    target.update(repeating: 0, count: channels)
                                }
                            }
                        }
                        (source, rowStride) = (UnsafePointer(patch), columns * channels)
                    }
                    let target = destination + local * channels
                    switch tiling.span {
                    case .width, .height:
                        LineWinograd.transform(source, stride: tiling.span == .width ? channels : rowStride,
                                               channels: channels, matrix: matrix, rows: points, columns: points, kind: transforms.inputKind,
                                               bias: nil, relu: false, destination: target, destinationStride: pointStride)
                    case .square:
                        // half[r][s]: point r down input column s; then point (r, q) along half's row r.
                        for s in 0..<points {
                            LineWinograd.transform(source + s * channels, stride: rowStride, channels: channels,
                                                   matrix: matrix, rows: points, columns: points,
                                                   kind: transforms.inputKind, bias: nil, relu: false,
                                                   destination: half + s * channels, destinationStride: points * channels)
                        }
                        for r in 0..<points {
                            LineWinograd.transform(half + r * points * channels, stride: channels, channels: channels,
                                                   matrix: matrix, rows: points, columns: points,
                                                   kind: transforms.inputKind, bias: nil, relu: false,
                                                   destination: target + r * points * pointStride,
                                                   destinationStride: pointStride)
                        }
                    }
                }
            }
        }
    }

    /// Each tile's products become its output pixels inside the image, bias and ReLU applied: along
    /// the line, or for a square down each column of products (four rows of partial sums) and then
    /// along each of those rows that lies inside the image.
    func transformOutputs(_ tiles: Range<Int>, blockStart: Int, blockCount: Int, source: UnsafePointer<Float>) {
        let tiling = LineTiling(geometry)
        let (height, width, channels) = (geometry.output.height, geometry.output.width, geometry.outputChannels)
        let (points, size) = (tiling.pointsPerAxis, LineWinograd.outputSize)
        let pointStride = blockCount * channels
        let halfCount = tiling.span == .square ? size * points * channels : 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(halfCount, 1)) { buffer in
            guard let half = buffer.baseAddress else { return }
            transforms.output.withUnsafeBufferPointer { matrix in
                guard let matrix = matrix.baseAddress else { return }
                for local in tiles {
                    let (image, row, column) = tiling.origin(blockStart + local)
                    let rows = min(tiling.tileHeight, height - row), columns = min(tiling.tileWidth, width - column)
                    let target = output + ((image * height + row) * width + column) * pixelStride
                    let products = source + local * channels
                    // Each output line: `pixels` values from `points` sums `stride` apart, stored `step` apart.
                    func store(_ sums: UnsafePointer<Float>, stride: Int, pixels: Int, into line: UnsafeMutablePointer<Float>,
                               step: Int) {
                        LineWinograd.transform(sums, stride: stride, channels: channels, matrix: matrix, rows: pixels,
                                               columns: points, kind: transforms.outputKind, bias: bias,
                                               relu: activation == .relu,
                                               destination: line, destinationStride: step)
                        if activation != .identity && activation != .relu {
                            _ = applyVectorActivation(input: line, output: line, rows: pixels, columns: channels,
                                                      rowStride: step, bias: nil, direction: .perColumn,
                                                      activation: activation, context: .singleThreaded)
                        }
                    }
                    switch tiling.span {
                    case .width: store(products, stride: pointStride, pixels: columns, into: target, step: pixelStride)
                    case .height: store(products, stride: pointStride, pixels: rows, into: target, step: width * pixelStride)
                    case .square:
                        for s in 0..<points {
                            LineWinograd.transform(products + s * pointStride, stride: points * pointStride,
                                                   channels: channels, matrix: matrix, rows: size, columns: points,
                                                   kind: transforms.outputKind, bias: nil, relu: false,
                                                   destination: half + s * channels,
                                                   destinationStride: points * channels)
                        }
                        for r in 0..<rows {
                            store(half + r * points * channels, stride: channels, pixels: columns,
                                  into: target + r * width * pixelStride, step: pixelStride)
                        }
                    }
                }
            }
        }
    }
}

extension LineWinograd {
    /// destination[p·destinationStride + c] = Σ_j matrix[p·columns + j]·source[j·stride + c] (+ bias,
    /// then ReLU) for p < rows and c < channels: CSIMDKernels' vector body when a SIMD level is in
    /// use, the same FMAs in the same order one channel at a time otherwise.
    /// `kind`: the SIMD kernels' name for `matrix` (`LineWinogradTransforms.inputKind`, `outputKind`).
    static func transform(_ source: UnsafePointer<Float>, stride: Int, channels: Int, matrix: UnsafePointer<Float>,
                          rows: Int, columns: Int, kind: Int32, bias: UnsafePointer<Float>?, relu: Bool,
                          destination: UnsafeMutablePointer<Float>, destinationStride: Int) {
        if let simd = KernelTable.current.line_transform {
            return simd(source, stride, channels, matrix, Int32(rows), Int32(columns), kind, bias, relu ? 1 : 0,
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
