/// Softmax and log-softmax along one axis of a tensor viewed as [outer, axis, inner]. Each
/// (outer, inner) lane is reduced by one thread (max, then sum of exponentials), so results do not
/// depend on the thread count; inner = 1 is the contiguous common case (last axis), which runs
/// on the vectorised C rows kernel where the CPU has one.
import CSIMDKernels
import Foundation

public enum Softmax {
    /// e^(x − max) below e^this is 0, as in the C rows kernel: masked scores (−100) would otherwise
    /// leave subnormals, which are slow to compute with and carry nothing.
    static let flushedExponent: Float = -80

    /// output = softmax(input) (or log-softmax when `logarithmic`) along the middle extent.
    /// In-place use is allowed.
    public static func apply(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                             outer: Int, axis: Int, inner: Int, logarithmic: Bool = false,
                             context: KernelContext = .singleThreaded) throws {
        let name = logarithmic ? "log_softmax" : "softmax"
        let count = try elementCount([outer, axis, inner], name)
        try requireCapacity(input.count, count, name, "input")
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        if inner == 1, !logarithmic, let kernel = KernelTable.current.softmax_rows {
            context.forEachChunk(outer, minimumChunk: max(1, parallelGrain / axis)) { rows in
                kernel(rows.count, axis, source + rows.lowerBound * axis, destination + rows.lowerBound * axis)
            }
            return
        }
        let lanes = outer * inner
        context.forEachChunk(lanes, minimumChunk: max(1, parallelGrain / axis)) { range in
            for lane in range {
                let block = lane / inner
                let offset = block * axis * inner + (lane - block * inner)
                let from = source + offset
                let to = destination + offset
                var largest = -Float.infinity
                for index in 0..<axis { largest = max(largest, from[index * inner]) }
                var sum: Float = 0
                if logarithmic {
                    for index in 0..<axis { sum += Foundation.exp(from[index * inner] - largest) }
                    let logSum = Foundation.log(sum) + largest
                    for index in 0..<axis { to[index * inner] = from[index * inner] - logSum }
                } else {
                    for index in 0..<axis {
                        let shifted = from[index * inner] - largest
                        let value = shifted < flushedExponent ? 0 : Foundation.exp(shifted)
                        to[index * inner] = value
                        sum += value
                    }
                    let scale = 1 / sum
                    for index in 0..<axis { to[index * inner] *= scale }
                }
            }
        }
    }
}
