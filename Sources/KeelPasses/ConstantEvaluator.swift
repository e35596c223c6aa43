import Foundation
import KeelIR

/// Evaluates the cheap ops on constant inputs at compile time, in Double with plain loops:
/// views and casts, transpose, concat, the unary activations and broadcasting arithmetic.
/// The GEMM-bound layers are not folded (their outputs are large and the runtime is faster).
enum ConstantEvaluator {
    /// A tensor during folding: C-order values and extents.
    struct Value {
        var values: [Double]
        var shape: [Int]
    }

    /// Largest result folded; bigger results stay as nodes rather than becoming weights.
    static let maximumElements = 1 << 24

    /// The node's single output, or nil when the op is not one this evaluator folds.
    static func evaluate(_ node: Node, inputs: [Value], outputShape: [Int]) -> [Double]? {
        guard let first = inputs.first else { return nil }
        switch node.op {
        case .reshape, .flatten, .squeeze, .unsqueeze, .identity, .dropout, .cast:
            return first.values
        case .transpose:
            let perm = (try? node.attributeReader.optionalInts("perm")) ?? nil
            return transpose(first, perm: perm ?? Array((0..<first.shape.count).reversed()))
        case .concat:
            guard let axis = Shape(known: outputShape).normalizedAxis((try? node.attributeReader.int("axis")) ?? -1) else { return nil }
            return concat(inputs, axis: axis)
        case .add, .sub, .mul, .div, .pow, .max, .min:
            guard inputs.count == 2, let operation = binary[node.op] else { return nil }
            return broadcast(inputs[0], inputs[1], to: outputShape, operation)
        default:
            guard let operation = unary[node.op] else { return nil }
            return first.values.map(operation)
        }
    }

    static let unary: [OpKind: (Double) -> Double] = [
        .relu: { Swift.max($0, 0) }, .neg: { -$0 }, .abs: { Swift.abs($0) }, .sqrt: { $0.squareRoot() },
        .exp: { Foundation.exp($0) }, .log: { Foundation.log($0) }, .sigmoid: { 1 / (1 + Foundation.exp(-$0)) },
        .tanh: { Foundation.tanh($0) },
    ]

    static let binary: [OpKind: (Double, Double) -> Double] = [
        .add: (+), .sub: (-), .mul: (*), .div: (/), .pow: { Foundation.pow($0, $1) },
        .max: { Swift.max($0, $1) }, .min: { Swift.min($0, $1) },
    ]

    /// C-order strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropLast().reversed() { result[axis] = result[axis + 1] * shape[axis + 1] }
        return result
    }

    /// Visits every index of `shape` in C order, handing each coordinate list to `body`.
    static func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<count {
            body(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    static func transpose(_ input: Value, perm: [Int]) -> [Double]? {
        guard perm.sorted() == Array(input.shape.indices) else { return nil }
        let inputStrides = strides(input.shape)
        var result: [Double] = []
        result.reserveCapacity(input.values.count)
        forEachIndex(perm.map { input.shape[$0] }) { index in
            var offset = 0
            for (axis, position) in index.enumerated() { offset += position * inputStrides[perm[axis]] }
            result.append(input.values[offset])
        }
        return result
    }

    static func concat(_ inputs: [Value], axis: Int) -> [Double] {
        let outer = inputs[0].shape[..<axis].reduce(1, *)
        var result: [Double] = []
        for block in 0..<outer {
            for input in inputs {
                let chunk = input.shape[axis...].reduce(1, *)
                result += input.values[(block * chunk)..<((block + 1) * chunk)]
            }
        }
        return result
    }

    /// NumPy broadcasting of two operands onto `shape` (their broadcast shape).
    static func broadcast(_ left: Value, _ right: Value, to shape: [Int], _ operation: (Double, Double) -> Double) -> [Double] {
        func offsets(_ value: Value) -> [Int] {
            let padded = [Int](repeating: 1, count: shape.count - value.shape.count) + value.shape
            let valueStrides = strides(padded)
            return padded.indices.map { padded[$0] == 1 ? 0 : valueStrides[$0] }
        }
        let leftStrides = offsets(left)
        let rightStrides = offsets(right)
        var result: [Double] = []
        result.reserveCapacity(shape.reduce(1, *))
        forEachIndex(shape) { index in
            var leftOffset = 0
            var rightOffset = 0
            for axis in index.indices {
                leftOffset += index[axis] * leftStrides[axis]
                rightOffset += index[axis] * rightStrides[axis]
            }
            result.append(operation(left.values[leftOffset], right.values[rightOffset]))
        }
        return result
    }
}
