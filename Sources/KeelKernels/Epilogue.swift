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
    let operation = activation
    let minimumRows = max(1, parallelGrain / max(1, block.columns))
    context.forEachChunk(block.rows, minimumChunk: minimumRows) { rows in
        operation.accept(EpilogueVisitor(block: block, bias: bias, direction: direction, rowRange: rows))
    }
}
