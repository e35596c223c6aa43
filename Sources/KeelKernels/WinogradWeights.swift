/// 3×3 filters in the Winograd F(4×4, 3×3) domain, transformed once when a model is prepared:
/// 36 row-major [inputChannels, outputChannels] matrices, one per transform point, which are the
/// right-hand sides of the 36 GEMMs a Winograd convolution runs per block of tiles.
/// They take 4× the memory of the plain filter (36 points instead of 9 taps).

public struct WinogradWeights: Sendable, Equatable {
    public let inputChannels: Int
    public let outputChannels: Int
    /// [36][inputChannels][outputChannels].
    let storage: [Float]

    /// From filters packed for im2col (a 3×3 kernel, one group). The transform runs in double
    /// precision so the only rounding is the final one to Float.
    public init(_ packed: PackedConv2DWeights) throws {
        try require(packed.kernel == Size2D(3, 3) && packed.groups == 1, "winograd weights",
                    "needs a 3x3 kernel with one group, got kernel \(packed.kernel) in \(packed.groups) groups")
        let (inputs, outputs) = (packed.inputChannelsPerGroup, packed.outputChannels)
        let matrix = WinogradTransform.filterMatrix
        var transformed = [Float](repeating: 0, count: 36 * inputs * outputs)
        packed.storage.withUnsafeBufferPointer { source in
            transformed.withUnsafeMutableBufferPointer { destination in
                var tap = [Double](repeating: 0, count: 9)
                var half = [Double](repeating: 0, count: 18)
                for channel in 0..<inputs {
                    for output in 0..<outputs {
                        for index in 0..<9 { tap[index] = Double(source[(index * inputs + channel) * outputs + output]) }
                        // half = G·g (6×3), then G·g·Gᵀ (6×6).
                        for row in 0..<6 {
                            for column in 0..<3 {
                                half[row * 3 + column] = matrix[row][0] * tap[column] + matrix[row][1] * tap[3 + column]
                                    + matrix[row][2] * tap[6 + column]
                            }
                        }
                        for row in 0..<6 {
                            for column in 0..<6 {
                                let value = half[row * 3] * matrix[column][0] + half[row * 3 + 1] * matrix[column][1]
                                    + half[row * 3 + 2] * matrix[column][2]
                                let point = row * 6 + column
                                destination[(point * inputs + channel) * outputs + output] = Float(value)
                            }
                        }
                    }
                }
            }
        }
        self.inputChannels = inputs
        self.outputChannels = outputs
        self.storage = transformed
    }

    /// Throws unless these weights were transformed for `geometry`.
    func check(against geometry: Conv2DGeometry) throws {
        try require(inputChannels == geometry.inputChannels && outputChannels == geometry.outputChannels,
                    "conv2d", "Winograd weights (\(inputChannels) in, \(outputChannels) out) do not match the "
                        + "geometry (\(geometry.inputChannels) in, \(geometry.outputChannels) out)")
    }
}
