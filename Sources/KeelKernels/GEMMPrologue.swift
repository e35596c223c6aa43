/// A BatchNorm (and ReLU) on a pointwise NHWC convolution's input channels, applied while the
/// panel GEMM packs the input rows: DenseNet normalises its whole concatenation before each 1×1
/// convolution, and this saves writing the normalised copy and reading it back.
public struct GEMMPrologue: Sendable {
    /// The per-channel scales, then the shifts (a folded BatchNorm).
    public var scaleShift: [Float]
    public var relu: Bool
    /// Elements between input rows (pixels) when they are a slice of a wider buffer; nil when adjacent.
    public var inputRowStride: Int?

    public init(scaleShift: [Float], relu: Bool, inputRowStride: Int? = nil) {
        self.scaleShift = scaleShift
        self.relu = relu
        self.inputRowStride = inputRowStride
    }

    /// Throws unless there is a scale and a shift per channel and `input` holds `rows` rows.
    func check(channels: Int, rows: Int, input: UnsafeBufferPointer<Float>) throws {
        let name = "conv2d"
        try requireCapacity(scaleShift.count, 2 * channels, name, "prologue scale and shift")
        let stride = inputRowStride ?? channels
        try require(stride >= channels, name, "input row stride \(stride) below \(channels) channels")
        try requireCapacity(input.count, rows == 0 ? 0 : (rows - 1) * stride + channels, name, "input")
    }
}
