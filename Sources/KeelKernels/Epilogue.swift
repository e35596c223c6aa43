import CSIMDKernels

/// The fused epilogue of conv2d and dense: bias add then any element-wise activation, applied to
/// a block of the output right after its GEMM while it is still in cache, instead of as separate
/// passes over memory. The activation is a `UnaryOperation`, so whatever the unary kernel can do
/// can also be fused.

/// Where the bias of an output block lives.
enum BiasDirection {
    /// One bias per column (NHWC and dense: channels are columns).
    case perColumn
    /// One bias per row (NCHW: channels are rows).
    case perRow
}

/// A `rows × columns` block of a row-major matrix with `rowStride` elements between rows.
struct OutputBlock {
    let base: UnsafeMutablePointer<Float>
    let rows: Int
    let columns: Int
    let rowStride: Int
}

private struct EpilogueVisitor: ElementFunctionVisitor {
    let block: OutputBlock
    let bias: UnsafePointer<Float>?
    let direction: BiasDirection
    let rowRange: Range<Int>

    func visit<Function: ElementFunction>(_ function: Function) {
        let columns = block.columns
        for row in rowRange {
            let line = block.base + row * block.rowStride
            switch (bias, direction) {
            case let (.some(bias), .perColumn):
                for column in 0..<columns { line[column] = function(line[column] + bias[column]) }
            case let (.some(bias), .perRow):
                let value = bias[row]
                for column in 0..<columns { line[column] = function(line[column] + value) }
            case (.none, _):
                mapElements(function, line, line, columns)
            }
        }
    }
}

/// Adds bias and applies the activation to a block, splitting rows across threads.
/// Skips the pass entirely when there is nothing to do.
func applyEpilogue(_ block: OutputBlock, bias: UnsafePointer<Float>?, direction: BiasDirection,
                   activation: UnaryOperation, context: KernelContext) {
    if bias == nil && activation == .identity { return }
    if applyVectorActivation(input: block.base, output: block.base, rows: block.rows, columns: block.columns,
                             rowStride: block.rowStride, bias: bias, direction: direction, activation: activation,
                             context: context) { return }
    let operation = activation
    let minimumRows = max(1, parallelGrain / max(1, block.columns))
    context.forEachChunk(block.rows, minimumChunk: minimumRows) { rows in
        operation.accept(EpilogueVisitor(block: block, bias: bias, direction: direction, rowRange: rows))
    }
}

/// activation(input + bias) into output (which may be input) on the C kernel (row_kernels.h's
/// activate_rows, the fused epilogues' vector forms), where the CPU has one and the activation has
/// a C form; false, having done nothing, otherwise. The scalar loop's `exp` took 3.5 ns a value:
/// EfficientNet's SiLU after its direct stem cost 1.4 of the layer's 1.8 ms. One row is split
/// across threads by columns, several by rows.
func applyVectorActivation(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                           rowStride: Int, bias: UnsafePointer<Float>?, direction: BiasDirection,
                           activation: UnaryOperation, context: KernelContext) -> Bool {
    guard let kernel = KernelTable.current.activate_rows,
          let (kind, first, second) = KernelEpilogue.fusedActivation(activation) else { return false }
    let perRow = direction == .perRow
    func run(_ rowRange: Range<Int>, _ columnRange: Range<Int>) {
        let shifted = bias.map { perRow ? $0 + rowRange.lowerBound : $0 + columnRange.lowerBound }
        var description = keel_epilogue(bias: shifted, bias_per_row: perRow ? 1 : 0, residual: nil,
                                        residual_stride: 0, activation: kind, parameter0: first, parameter1: second)
        let offset = rowRange.lowerBound * rowStride + columnRange.lowerBound
        kernel(rowRange.count, columnRange.count, rowStride, input + offset, output + offset, &description)
    }
    if rows == 1 {
        context.forEachChunk(columns, minimumChunk: parallelGrain) { run(0..<1, $0) }
    } else {
        context.forEachChunk(rows, minimumChunk: max(1, parallelGrain / max(1, columns))) { run($0, 0..<columns) }
    }
    return true
}
