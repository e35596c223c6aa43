/// How a rank-4 activation tensor orders its axes. Keras uses NHWC, ONNX and PyTorch NCHW.
public enum Layout: String, Hashable, Sendable, Codable {
    case nhwc
    case nchw

    public var channelAxis: Int { self == .nhwc ? 3 : 1 }
    public var heightAxis: Int { self == .nhwc ? 1 : 2 }
    public var widthAxis: Int { self == .nhwc ? 2 : 3 }
}

/// The type of a value flowing through the graph.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var shape: Shape

    public init(_ dtype: DType, _ shape: Shape) {
        self.dtype = dtype
        self.shape = shape
    }

    public var description: String { dtype.rawValue + shape.description }
}
