/// Binary element-wise arithmetic with full NumPy broadcasting. Each operand gets broadcast
/// strides over the output and the strided engine merges axes, so same-shape, scalar and
/// per-channel operands all end in a flat inner loop specialised per operation.
import Foundation

/// An element-wise binary operation.
public enum BinaryOperation: Sendable, Equatable {
    case add, subtract, multiply, divide, power, maximum, minimum
    /// a - b·trunc(a/b): the remainder with a's sign (C's fmod).
    case remainder
    /// PReLU: a where a >= 0, otherwise a·b (b is the slope).
    case prelu
}

protocol PairFunction {
    func callAsFunction(_ a: Float, _ b: Float) -> Float
}

private struct AddFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
private struct SubtractFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
private struct MultiplyFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
private struct DivideFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }
private struct PowerFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { Foundation.pow(a, b) } }
private struct MaximumFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { propagatingMax(a, b) } }
private struct MinimumFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { propagatingMin(a, b) } }
private struct RemainderFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a.truncatingRemainder(dividingBy: b) } }
private struct PReluFunction: PairFunction { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a >= 0 ? a : a * b } }

/// One validated binary call over a merged strided space (operands: 0 output, 1 a, 2 b).
private struct BinaryRun {
    let space: StridedSpace
    let a: UnsafePointer<Float>
    let b: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let context: KernelContext

    func run<Function: PairFunction>(_ function: Function) {
        if runPeriodic(function) { return }
        let (aStride, bStride) = (space.innerStride(1), space.innerStride(2))
        space.forEachSegment(context: context) { starts, columns in
            let start = columns.lowerBound
            let to = output + starts[0] + start
            let left = a + starts[1] + start * aStride
            let right = b + starts[2] + start * bStride
            let count = columns.count
            switch (aStride, bStride) {
            case (1, 1):
                for index in 0..<count { to[index] = function(left[index], right[index]) }
            case (1, 0):
                let value = right.pointee
                for index in 0..<count { to[index] = function(left[index], value) }
            case (0, 1):
                let value = left.pointee
                for index in 0..<count { to[index] = function(value, right[index]) }
            default:
                for index in 0..<count { to[index] = function(left[index * aStride], right[index * bStride]) }
            }
        }
    }

    /// A contiguous operand against a short vector repeated along it (an image's per-channel
    /// mean or scale in NHWC: rows of 3): the row-by-row walk costs far more than the arithmetic,
    /// so the repeated operand is tiled into a block of whole periods and the loop runs flat over
    /// blocks. Returns false, having written nothing, for any other space.
    private func runPeriodic<Function: PairFunction>(_ function: Function) -> Bool {
        guard space.shape.count == 2 else { return false }
        let (rows, period) = (space.shape[0], space.shape[1])
        let contiguous = [period, 1], repeated = [0, 1]
        let repeatedFirst = space.strides[1] == repeated && space.strides[2] == contiguous
        guard period < 64, rows > 1, space.strides[0] == contiguous,
              repeatedFirst || (space.strides[1] == contiguous && space.strides[2] == repeated) else { return false }
        let periods = max(1, 256 / period), block = periods * period
        var tiled = [Float](repeating: 0, count: block)
        let pattern = repeatedFirst ? a : b
        for index in 0..<block { tiled[index] = pattern[index % period] }
        let (full, values) = (repeatedFirst ? b : a, output)
        tiled.withUnsafeBufferPointer { tile in
            let tile = tile.baseAddress!
            context.forEachChunk(rows, minimumChunk: max(periods, parallelGrain / period)) { range in
                // Whole blocks, then the rows left over (fewer than a block's).
                var row = range.lowerBound
                while row + periods <= range.upperBound {
                    let (to, from) = (values + row * period, full + row * period)
                    if repeatedFirst {
                        for index in 0..<block { to[index] = function(tile[index], from[index]) }
                    } else {
                        for index in 0..<block { to[index] = function(from[index], tile[index]) }
                    }
                    row += periods
                }
                let start = row * period, count = (range.upperBound - row) * period
                for index in 0..<count {
                    let (left, right) = repeatedFirst ? (tile[index], full[start + index]) : (full[start + index], tile[index])
                    values[start + index] = function(left, right)
                }
            }
        }
        return true
    }

    func run(_ operation: BinaryOperation) {
        switch operation {
        case .add: run(AddFunction())
        case .subtract: run(SubtractFunction())
        case .multiply: run(MultiplyFunction())
        case .divide: run(DivideFunction())
        case .power: run(PowerFunction())
        case .maximum: run(MaximumFunction())
        case .minimum: run(MinimumFunction())
        case .remainder: run(RemainderFunction())
        case .prelu: run(PReluFunction())
        }
    }
}

public enum Broadcast {
    /// The NumPy broadcast of two shapes.
    public static func shape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let rank = max(a.count, b.count)
        let left = [Int](repeating: 1, count: rank - a.count) + a
        let right = [Int](repeating: 1, count: rank - b.count) + b
        return try (0..<rank).map { axis in
            let (x, y) = (left[axis], right[axis])
            try require(x >= 0 && y >= 0 && (x == y || x == 1 || y == 1), "broadcast",
                        "shapes \(a) and \(b) do not broadcast")
            return x == 1 ? y : x
        }
    }

    /// output = a ∘ b with NumPy broadcasting; output has shape `shape(aShape, bShape)`.
    /// The output may be the same buffer as an operand whose shape equals the output shape.
    public static func binary(_ operation: BinaryOperation, a: UnsafeBufferPointer<Float>, aShape: [Int],
                              b: UnsafeBufferPointer<Float>, bShape: [Int], output: UnsafeMutableBufferPointer<Float>,
                              context: KernelContext = .singleThreaded) throws {
        let (outputShape, count) = try checked("binary", [("a", a.count, aShape), ("b", b.count, bShape)], output: output.count)
        guard count > 0, let left = a.baseAddress, let right = b.baseAddress, let destination = output.baseAddress else { return }
        let space = broadcastSpace(outputShape, [aShape, bShape])
        BinaryRun(space: space, a: left, b: right, output: destination, context: context).run(operation)
    }

    /// output = condition ? x : y, element by element with NumPy broadcasting of all three (ONNX
    /// Where); `condition` holds one byte per element, non-zero for true.
    public static func select(condition: [UInt8], conditionShape: [Int], x: UnsafeBufferPointer<Float>, xShape: [Int],
                              y: UnsafeBufferPointer<Float>, yShape: [Int], output: UnsafeMutableBufferPointer<Float>,
                              context: KernelContext = .singleThreaded) throws {
        let (outputShape, count) = try checked("select", [("condition", condition.count, conditionShape),
                                                          ("x", x.count, xShape), ("y", y.count, yShape)], output: output.count)
        guard count > 0, let left = x.baseAddress, let right = y.baseAddress, let destination = output.baseAddress else { return }
        let space = broadcastSpace(outputShape, [conditionShape, xShape, yShape])
        let strides = (space.innerStride(1), space.innerStride(2), space.innerStride(3))
        condition.withUnsafeBufferPointer { flags in
            guard let flag = flags.baseAddress else { return }
            space.forEachSegment(context: context) { starts, columns in
                let to = destination + starts[0]
                let (c, a, b) = (flag + starts[1], left + starts[2], right + starts[3])
                for index in columns {
                    to[index] = c[index * strides.0] != 0 ? a[index * strides.1] : b[index * strides.2]
                }
            }
        }
    }

    /// The broadcast of every operand's shape, after checking each operand holds its shape's
    /// elements and the output holds the broadcast's; with its element count.
    private static func checked(_ name: String, _ operands: [(label: String, count: Int, shape: [Int])],
                                output: Int) throws -> (shape: [Int], count: Int) {
        var outputShape = operands[0].shape
        for operand in operands.dropFirst() { outputShape = try shape(outputShape, operand.shape) }
        for operand in operands { try requireCapacity(operand.count, try elementCount(operand.shape, name), name, operand.label) }
        let count = try elementCount(outputShape, name)
        try requireCapacity(output, count, name, "output")
        return (outputShape, count)
    }

    /// The output (operand 0) and each operand broadcast to it, axes merged.
    private static func broadcastSpace(_ outputShape: [Int], _ shapes: [[Int]]) -> StridedSpace {
        StridedSpace(shape: outputShape,
                     strides: [contiguousStrides(outputShape)] + shapes.map { broadcastStrides(of: $0, to: outputShape) })
    }

    /// Copies `input` broadcast to `outputShape` (which must be a broadcast of `inputShape`).
    public static func expand(input: UnsafeBufferPointer<Float>, inputShape: [Int],
                              output: UnsafeMutableBufferPointer<Float>, outputShape: [Int],
                              context: KernelContext = .singleThreaded) throws {
        let name = "expand"
        try require(try shape(inputShape, outputShape) == outputShape, name,
                    "\(inputShape) does not broadcast to \(outputShape)")
        try requireCapacity(input.count, try elementCount(inputShape, name), name, "input")
        let count = try elementCount(outputShape, name)
        try requireCapacity(output.count, count, name, "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        stridedCopy(from: source, sourceStrides: broadcastStrides(of: inputShape, to: outputShape), to: destination,
                    destinationStrides: contiguousStrides(outputShape), shape: outputShape, context: context)
    }

    /// Variadic sum with broadcasting: output = inputs[0] + inputs[1] + … in that order.
    public static func sum(inputs: [UnsafeBufferPointer<Float>], shapes: [[Int]],
                           output: UnsafeMutableBufferPointer<Float>, context: KernelContext = .singleThreaded) throws {
        let name = "sum"
        try require(!inputs.isEmpty && inputs.count == shapes.count, name,
                    "\(inputs.count) inputs with \(shapes.count) shapes")
        var outputShape = shapes[0]
        for next in shapes.dropFirst() { outputShape = try shape(outputShape, next) }
        for (buffer, inputShape) in zip(inputs, shapes) {
            try requireCapacity(buffer.count, try elementCount(inputShape, name), name, "input")
        }
        try expand(input: inputs[0], inputShape: shapes[0], output: output, outputShape: outputShape, context: context)
        let accumulated = UnsafeBufferPointer(output)
        for (buffer, inputShape) in zip(inputs, shapes).dropFirst() {
            try binary(.add, a: accumulated, aShape: outputShape, b: buffer, bShape: inputShape,
                       output: output, context: context)
        }
    }
}
