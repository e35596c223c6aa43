import KeelIR

/// How one bound parameter's values are made from the weights file. Everything but `permuted`
/// and the BatchNorm rewrites shares the file's bytes, so binding keeps memory low.
enum WeightRecipe {
    /// The tensor as stored (possibly under a shape with size-1 axes dropped).
    case shared(TensorData)
    /// `source` viewed as `viewShape`, axes reordered by `permutation`, read as `shape`.
    case permuted(TensorData, viewShape: [Int], permutation: [Int], shape: [Int])
    /// gamma · sqrt(variance + targetEpsilon) / sqrt(variance + sourceEpsilon); the variance is
    /// 1 (with source epsilon 0) for tf2onnx's folded BatchNormalization.
    case rescaledGamma(TensorData, variance: TensorData?, sourceEpsilon: Float, targetEpsilon: Float)
    /// `count` copies of `value`: the zero mean and unit variance of a folded BatchNormalization.
    case filled(Float, count: Int)

    /// Makes the values; `shape` is the parameter's shape in the graph.
    func make(shape: [Int]) -> TensorData {
        switch self {
        case .shared(let data):
            return data.shape == shape ? data : TensorData(dtype: data.dtype, shape: shape, storage: data.storage)
        case .permuted(let data, let viewShape, let permutation, _):
            return TensorData(floats: transposed(data, viewShape: viewShape, permutation: permutation), shape: shape)
        case .rescaledGamma(let gamma, let variance, let sourceEpsilon, let targetEpsilon):
            let gammas = gamma.floats()
            let variances = variance?.floats() ?? Array(repeating: 1, count: gammas.count)
            let values = zip(gammas, variances).map { g, v in g * ((v + targetEpsilon) / (v + sourceEpsilon)).squareRoot() }
            return TensorData(floats: values, shape: shape)
        case .filled(let value, let count):
            return TensorData(floats: Array(repeating: value, count: count), shape: shape)
        }
    }

    /// The shape `make` produces, for the exact shape check before anything is converted.
    var resultShape: [Int] {
        switch self {
        case .shared(let data): return data.shape
        case .permuted(_, _, _, let shape): return shape
        case .rescaledGamma(let gamma, _, _, _): return gamma.shape
        case .filled(_, let count): return [count]
        }
    }
}

/// `data` (C order, `viewShape`) with its axes reordered: result axis i is source axis
/// `permutation[i]`. Walks the result in order with an odometer over the source strides.
func transposed(_ data: TensorData, viewShape: [Int], permutation: [Int]) -> [Float] {
    let count = data.elementCount
    var result = [Float](repeating: 0, count: count)
    guard count > 0 else { return result }
    var sourceStrides = [Int](repeating: 1, count: viewShape.count)
    for axis in stride(from: viewShape.count - 2, through: 0, by: -1) {
        sourceStrides[axis] = sourceStrides[axis + 1] * viewShape[axis + 1]
    }
    let extents = permutation.map { viewShape[$0] }
    let strides = permutation.map { sourceStrides[$0] }
    let converted: [Float]? = data.floatBuffer == nil ? data.floats() : nil
    func copy(from source: UnsafeBufferPointer<Float>) {
        var index = [Int](repeating: 0, count: extents.count)
        var offset = 0
        let last = extents.count - 1
        let innerExtent = extents[last], innerStride = strides[last]
        var written = 0
        result.withUnsafeMutableBufferPointer { output in
            while written < count {
                for step in 0..<innerExtent { output[written + step] = source[offset + step * innerStride] }
                written += innerExtent
                // Advance the odometer over every axis but the innermost.
                var axis = last - 1
                while axis >= 0 {
                    index[axis] += 1
                    offset += strides[axis]
                    if index[axis] < extents[axis] { break }
                    offset -= strides[axis] * extents[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }
    if let converted {
        converted.withUnsafeBufferPointer(copy)
    } else if let buffer = data.floatBuffer {
        copy(from: buffer)
    }
    return result
}

/// The recipe for a graph's conv kernel from an ONNX Conv weight (OIHW).
func convKernelRecipe(_ weight: TensorData, graphLayout: String) -> (WeightRecipe, String?) {
    guard graphLayout == "hwio", weight.shape.count == 4 else { return (.shared(weight), nil) }
    let shape = [2, 3, 1, 0].map { weight.shape[$0] }
    return (.permuted(weight, viewShape: weight.shape, permutation: [2, 3, 1, 0], shape: shape), "OIHW->HWIO")
}

/// The recipe for a graph's dense kernel from an ONNX Gemm/MatMul weight: `[out,in]` (Gemm
/// transB) or `[in,out]`, to the graph's `weight_layout`, with the rows reordered when the
/// source flattened image features in a different order than the graph does.
///
/// `flatten` is the graph's flatten input as (height, width, channels) in the graph's order.
func denseKernelRecipe(_ weight: TensorData, transposed: Bool, graphLayout: String,
                       sourceOrder: FlattenOrder?, graphOrder: FlattenOrder?,
                       image: (height: Int, width: Int, channels: Int)?) -> (WeightRecipe, String?) {
    guard weight.shape.count == 2 else { return (.shared(weight), nil) }
    let graphOutIn = graphLayout == "out_in"
    var notes: [String] = []
    if transposed != graphOutIn { notes.append(transposed ? "[out,in]->[in,out]" : "[in,out]->[out,in]") }
    let (outputs, inputs) = transposed ? (weight.shape[0], weight.shape[1]) : (weight.shape[1], weight.shape[0])
    let shape = graphOutIn ? [outputs, inputs] : [inputs, outputs]
    if let sourceOrder, let graphOrder, sourceOrder != graphOrder, let image,
       image.height * image.width > 1, image.channels > 1, image.height * image.width * image.channels == inputs {
        // View the input axis as three axes in the source's order, then reorder them to the graph's.
        let (h, w, c) = image
        let sourceAxes = sourceOrder == .nchw ? [c, h, w] : [h, w, c]
        let toGraph = sourceOrder == .nchw ? [1, 2, 0] : [2, 0, 1]   // (c,h,w)->(h,w,c) or back
        notes.append("rows (\(sourceOrder.rawValue))->(\(graphOrder.rawValue))")
        if transposed {
            let view = [outputs] + sourceAxes
            let order = graphOutIn ? [0] + toGraph.map { $0 + 1 } : toGraph.map { $0 + 1 } + [0]
            return (.permuted(weight, viewShape: view, permutation: order, shape: shape), notes.joined(separator: ", "))
        }
        let view = sourceAxes + [outputs]
        let order = graphOutIn ? [3] + toGraph : toGraph + [3]
        return (.permuted(weight, viewShape: view, permutation: order, shape: shape), notes.joined(separator: ", "))
    }
    if transposed != graphOutIn {
        return (.permuted(weight, viewShape: weight.shape, permutation: [1, 0], shape: shape), notes.joined(separator: ", "))
    }
    return (.shared(weight), nil)
}
