/// Maximum, minimum and clamping that return NaN when an operand is NaN, as IEEE 754-2019's
/// maximum/minimum, NumPy and ONNX Runtime's Relu, Clip, Max and Min do. `Swift.max(a, b)` returns
/// `a` when `b` is NaN, so a NaN input turned into a clean number (0 through ReLU, the window's
/// maximum through max pooling). Written as one compare-and-select with the NaN operand last,
/// these compile to the same single max/min instruction as the masking forms.

@inline(__always) func propagatingMax(_ a: Float, _ b: Float) -> Float { a > b || a.isNaN ? a : b }

@inline(__always) func propagatingMin(_ a: Float, _ b: Float) -> Float { a < b || a.isNaN ? a : b }

/// min(max(x, lower), upper) as ONNX's Clip defines it (upper wins when lower > upper); NaN stays
/// NaN, since `x < lower` and `y > upper` are both false for it.
@inline(__always) func clampPropagatingNaN(_ x: Float, _ lower: Float, _ upper: Float) -> Float {
    let y = x < lower ? lower : x
    return y > upper ? upper : y
}
