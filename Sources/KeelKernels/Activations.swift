/// Element-wise activations. Each function is a small value type so generic loops specialise into
/// a tight loop per function (no closure call per element); one visitor switch maps the public
/// `UnaryOperation` to those types, and the fused conv/dense epilogue reuses the same switch.
import Foundation

/// An element-wise unary operation.
public enum UnaryOperation: Sendable, Equatable {
    case identity
    case relu
    case leakyRelu(alpha: Float)
    case elu(alpha: Float)
    /// gamma·x for x > 0, gamma·alpha·(e^x - 1) otherwise; the defaults are ONNX's and Keras's constants.
    case selu(alpha: Float = 1.67326319217681884765625, gamma: Float = 1.05070102214813232421875)
    case sigmoid
    case tanh
    /// GELU with the exact erf formulation.
    case gelu
    /// GELU with the tanh approximation.
    case geluTanh
    case erf
    case softplus
    /// max(0, min(1, alpha·x + beta)).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x · max(0, min(1, x/6 + 1/2)).
    case hardSwish
    /// x · sigmoid(x).
    case swish
    case clip(min: Float, max: Float)
    case sqrt
    case exp
    case log
    case negate
    case absolute
    case reciprocal
    case ceil
    case floor
    /// Halves to the even neighbour, as ONNX's Round.
    case round
    case sin
    case cos
}

/// A scalar function the generic loops are specialised on.
protocol ElementFunction {
    func callAsFunction(_ x: Float) -> Float
}

struct IdentityFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x }
}
struct ReluFunction: ElementFunction {
    /// `x < 0 ? 0 : x`, not `x > 0 ? x : 0`: the same max instruction, but NaN passes through.
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x < 0 ? 0 : x }
}
struct LeakyReluFunction: ElementFunction {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x >= 0 ? x : alpha * x }
}
struct EluFunction: ElementFunction {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? x : alpha * (Foundation.exp(x) - 1) }
}
struct SeluFunction: ElementFunction {
    let alpha: Float
    let gamma: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float {
        x > 0 ? gamma * x : gamma * alpha * (Foundation.exp(x) - 1)
    }
}
struct SigmoidFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
}
struct TanhFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.tanh(x) }
}
struct GeluFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float {
        0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752))
    }
}
struct GeluTanhFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float {
        0.5 * x * (1 + Foundation.tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)))
    }
}
struct ErfFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.erf(x) }
}
struct SoftplusFunction: ElementFunction {
    /// Written so neither branch overflows: log(1 + e^x) = x + log(1 + e^-x).
    @inline(__always) func callAsFunction(_ x: Float) -> Float {
        x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x))
    }
}
struct HardSigmoidFunction: ElementFunction {
    let alpha: Float
    let beta: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { clampPropagatingNaN(alpha * x + beta, 0, 1) }
}
struct HardSwishFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x * clampPropagatingNaN(x / 6 + 0.5, 0, 1) }
}
struct SwishFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }
}
struct ClipFunction: ElementFunction {
    let lower: Float
    let upper: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { clampPropagatingNaN(x, lower, upper) }
}
struct SqrtFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x.squareRoot() }
}
struct ExpFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.exp(x) }
}
struct LogFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.log(x) }
}
struct NegateFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { -x }
}
struct AbsoluteFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.abs(x) }
}
struct ReciprocalFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { 1 / x }
}
struct CeilFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x.rounded(.up) }
}
struct FloorFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x.rounded(.down) }
}
struct RoundFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x.rounded(.toNearestOrEven) }
}
struct SinFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.sin(x) }
}
struct CosFunction: ElementFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Foundation.cos(x) }
}

/// Something that runs a generic body for one concrete `ElementFunction`.
protocol ElementFunctionVisitor {
    func visit<Function: ElementFunction>(_ function: Function)
}

extension UnaryOperation {
    /// The single place that maps the enum to its specialised function type.
    func accept<Visitor: ElementFunctionVisitor>(_ visitor: Visitor) {
        switch self {
        case .identity: visitor.visit(IdentityFunction())
        case .relu: visitor.visit(ReluFunction())
        case let .leakyRelu(alpha): visitor.visit(LeakyReluFunction(alpha: alpha))
        case let .elu(alpha): visitor.visit(EluFunction(alpha: alpha))
        case let .selu(alpha, gamma): visitor.visit(SeluFunction(alpha: alpha, gamma: gamma))
        case .sigmoid: visitor.visit(SigmoidFunction())
        case .tanh: visitor.visit(TanhFunction())
        case .gelu: visitor.visit(GeluFunction())
        case .geluTanh: visitor.visit(GeluTanhFunction())
        case .erf: visitor.visit(ErfFunction())
        case .softplus: visitor.visit(SoftplusFunction())
        case let .hardSigmoid(alpha, beta): visitor.visit(HardSigmoidFunction(alpha: alpha, beta: beta))
        case .hardSwish: visitor.visit(HardSwishFunction())
        case .swish: visitor.visit(SwishFunction())
        case let .clip(lower, upper): visitor.visit(ClipFunction(lower: lower, upper: upper))
        case .sqrt: visitor.visit(SqrtFunction())
        case .exp: visitor.visit(ExpFunction())
        case .log: visitor.visit(LogFunction())
        case .negate: visitor.visit(NegateFunction())
        case .absolute: visitor.visit(AbsoluteFunction())
        case .reciprocal: visitor.visit(ReciprocalFunction())
        case .ceil: visitor.visit(CeilFunction())
        case .floor: visitor.visit(FloorFunction())
        case .round: visitor.visit(RoundFunction())
        case .sin: visitor.visit(SinFunction())
        case .cos: visitor.visit(CosFunction())
        }
    }
}

/// Applies a function to `count` contiguous elements; `input` may equal `output`.
@inline(__always)
func mapElements<Function: ElementFunction>(_ function: Function, _ input: UnsafePointer<Float>,
                                            _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    for index in 0..<count {
        output[index] = function(input[index])
    }
}

private struct UnaryVisitor: ElementFunctionVisitor {
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let count: Int
    let context: KernelContext

    func visit<Function: ElementFunction>(_ function: Function) {
        context.forEachChunk(count, minimumChunk: parallelGrain) { range in
            mapElements(function, input + range.lowerBound, output + range.lowerBound, range.count)
        }
    }
}

public enum Unary {
    /// output[i] = op(input[i]) for the first `count` elements. In-place use (same buffer) is allowed.
    public static func apply(_ operation: UnaryOperation, input: UnsafeBufferPointer<Float>,
                             output: UnsafeMutableBufferPointer<Float>, count: Int,
                             context: KernelContext = .singleThreaded) throws {
        try require(count >= 0, "unary", "negative count \(count)")
        try requireCapacity(input.count, count, "unary", "input")
        try requireCapacity(output.count, count, "unary", "output")
        guard count > 0, let source = input.baseAddress, let destination = output.baseAddress else { return }
        if applyVectorActivation(input: source, output: destination, rows: 1, columns: count, rowStride: count,
                                 bias: nil, direction: .perColumn, activation: operation, context: context) { return }
        operation.accept(UnaryVisitor(input: source, output: destination, count: count, context: context))
    }
}
