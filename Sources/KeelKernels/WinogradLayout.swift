/// The channels-last views Winograd's transforms read and write: a band of NCHW output rows, an
/// input patch read in place or copied with its padding, and the transposes between the layouts.

/// Channels-last rows of one band of NCHW output, [m][width][channels].
struct OutputBand {
    let base: UnsafeMutablePointer<Float>
}

/// A channels-last image (or band of rows) whose row 0 sits at input row `top`.
struct ChannelsLastView {
    let base: UnsafePointer<Float>
    let height: Int
    let width: Int
    let channels: Int
    let top: Int

    /// The size×size×channels patch starting at column `left` as (base, row stride): read in place
    /// when it lies inside the view, otherwise copied into `patch` with zeros for the padding.
    func patch(left: Int, size: Int, into patch: UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int) {
        if top >= 0 && left >= 0 && top + size <= height && left + size <= width {
            return (base + (top * width + left) * channels, width * channels)
        }
        for row in 0..<size {
            for column in 0..<size {
                let destination = patch + (row * size + column) * channels
                let (y, x) = (top + row, left + column)
                if y >= 0 && y < height && x >= 0 && x < width {
                    destination.update(from: base + (y * width + x) * channels, count: channels)
                } else {
                    destination.update(repeating: 0, count: channels)
                }
            }
        }
        return (UnsafePointer(patch), size * channels)
    }
}

/// destination[column · destinationStride + row] = source[row · sourceStride + column] for a
/// rows × columns block: 8×8 sub-blocks are loaded as vectors and transposed in registers, so
/// both sides move whole 8-float runs; the ragged edges go element by element.
func transpose(_ source: UnsafePointer<Float>, sourceStride: Int, rows: Int, columns: Int,
               to destination: UnsafeMutablePointer<Float>, destinationStride: Int) {
    let fullRows = rows - rows % 8
    let fullColumns = columns - columns % 8
    for row in stride(from: 0, to: fullRows, by: 8) {
        let line = source + row * sourceStride
        for column in stride(from: 0, to: fullColumns, by: 8) {
            let block = line + column
            let v0 = SIMD8<Float>(loadingFrom: block)
            let v1 = SIMD8<Float>(loadingFrom: block + sourceStride)
            let v2 = SIMD8<Float>(loadingFrom: block + 2 * sourceStride)
            let v3 = SIMD8<Float>(loadingFrom: block + 3 * sourceStride)
            let v4 = SIMD8<Float>(loadingFrom: block + 4 * sourceStride)
            let v5 = SIMD8<Float>(loadingFrom: block + 5 * sourceStride)
            let v6 = SIMD8<Float>(loadingFrom: block + 6 * sourceStride)
            let v7 = SIMD8<Float>(loadingFrom: block + 7 * sourceStride)
            let target = destination + column * destinationStride + row
            for lane in 0..<8 {
                SIMD8(v0[lane], v1[lane], v2[lane], v3[lane], v4[lane], v5[lane], v6[lane], v7[lane])
                    .store(to: target + lane * destinationStride)
            }
        }
        for column in fullColumns..<columns {
            for offset in 0..<8 { destination[column * destinationStride + row + offset] = line[offset * sourceStride + column] }
        }
    }
    for row in fullRows..<rows {
        for column in 0..<columns { destination[column * destinationStride + row] = source[row * sourceStride + column] }
    }
}
