import KeelIR

/// A dense float32 tensor in C order: what callers hand to and get back from a model.
/// Runtime values are float32 throughout; other dtypes exist only as compile-time constants.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) throws {
        let expected = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), values.count == expected else {
            throw RuntimeError.invalidTensor(
                "shape \(Shape(known: shape)) holds \(formatCount(expected)) values but \(formatCount(values.count)) were given")
        }
        self.shape = shape
        self.values = values
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.values = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var elementCount: Int { values.count }
}
