/// Reductions, transpose, concat, pad, slice and gather against ONNX Runtime fixtures.
import KeelKernels
import XCTest

final class DataMovementTests: XCTestCase {
    func testReduceMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("reduce") {
            guard let x = fixture.input("x"), let axes = fixture.ints("axes") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let expected = try Fixtures.expected(fixture)
            let reduction: Reduction = fixture.string("function") == "ReduceSum" ? .sum : .mean
            for threads in [1, 2] {
                let actual = try withOutput(expected.values.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try Reduce.apply(reduction, input: source, shape: x.shape, axes: axes, output: output,
                                         context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, expected.values, "\(fixture.name) threads \(threads)")
            }
        }
    }

    /// Reductions over a contiguous innermost run (16 lanes, then the tail) and over two axes whose
    /// inner one is contiguous, for every reduction (max and min too), against double precision here; the
    /// same bits at 1 and 3 threads.
    func testContiguousInnerReductionsMatchDoublePrecision() throws {
        let cases: [(shape: [Int], axes: [Int])] = [([6, 37], [1]), ([5, 16], [-1]), ([4, 5], [1]), ([3, 2, 20], [1, 2]),
                                                    ([2, 3, 48], [2])]
        let reductions: [Reduction] = [.sum, .mean, .sumOfSquares, .product, .maximum, .minimum]
        for (shape, axes) in cases {
            let count = shape.reduce(1, *)
            // Near 1 so that products of dozens of values stay well within float range.
            let input = (0..<count).map { Float(0.75 + 0.5 * ((Double($0) * 0.618).truncatingRemainder(dividingBy: 1))) }
            let reducedAxes = Set(axes.map { $0 < 0 ? $0 + shape.count : $0 })
            let keptShape = shape.indices.filter { !reducedAxes.contains($0) }.map { shape[$0] }
            let outputs = keptShape.reduce(1, *)
            let strides = shape.indices.map { shape[($0 + 1)...].reduce(1, *) }
            for reduction in reductions {
                let start: Double = reduction == .product ? 1 : reduction == .maximum ? -.infinity : reduction == .minimum ? .infinity : 0
                var expected = [Double](repeating: start, count: outputs)
                var counts = [Int](repeating: 0, count: outputs)
                for flat in 0..<count {
                    let index = shape.indices.map { (flat / strides[$0]) % shape[$0] }
                    let kept = shape.indices.filter { !reducedAxes.contains($0) }
                    let target = kept.reduce(0) { $0 * shape[$1] + index[$1] }
                    let value = Double(input[flat])
                    switch reduction {
                    case .sum, .mean: expected[target] += value
                    case .sumOfSquares: expected[target] += value * value
                    case .product: expected[target] *= value
                    case .maximum: expected[target] = max(expected[target], value)
                    case .minimum: expected[target] = min(expected[target], value)
                    }
                    counts[target] += 1
                }
                if reduction == .mean { expected = zip(expected, counts).map { $0 / Double($1) } }
                var byThreads: [[Float]] = []
                for threads in [1, 3] {
                    byThreads.append(try withOutput(outputs) { output in
                        try input.withUnsafeBufferPointer { source in
                            try Reduce.apply(reduction, input: source, shape: shape, axes: axes, output: output,
                                             context: KernelContext(threads: threads))
                        }
                    })
                }
                for (got, want) in zip(byThreads[0], expected) {
                    XCTAssertEqual(Double(got), want, accuracy: 1e-5 * abs(want), "\(reduction) over \(axes) of \(shape)")
                }
                XCTAssertEqual(byThreads[0], byThreads[1], "\(reduction) over \(axes) of \(shape): thread count changed the bits")
            }
        }
    }

    func testTransposeMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("transpose") {
            guard let x = fixture.input("x"), let permutation = fixture.ints("perm") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let actual = try withOutput(input.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try DataMovement.transpose(input: source, shape: x.shape, permutation: permutation, output: output)
                }
            }
            assertClose(actual, try Fixtures.expected(fixture).values, fixture.name, tolerance: 0)
        }
    }

    func testConcatMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("concat") {
            guard let rawAxis = fixture.int("axis"), let first = fixture.inputs.first else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let axis = rawAxis < 0 ? rawAxis + first.shape.count : rawAxis
            let arrays = try fixture.inputs.map { try Fixtures.floats($0) }
            let expected = try Fixtures.expected(fixture)
            let actual = try withOutput(expected.values.count) { output in
                try withBuffers(arrays) { buffers in
                    try DataMovement.concat(inputs: buffers, axisExtents: fixture.inputs.map { $0.shape[axis] },
                                            outer: first.shape[..<axis].reduce(1, *),
                                            inner: first.shape[(axis + 1)...].reduce(1, *), output: output)
                }
            }
            assertClose(actual, expected.values, fixture.name, tolerance: 0)
        }
    }

    func testPadMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("pad") {
            guard let x = fixture.input("x"), let pads = fixture.ints("pads"), let value = fixture.float("value") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let expected = try Fixtures.expected(fixture)
            let actual = try withOutput(expected.values.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try DataMovement.pad(input: source, shape: x.shape, pads: pads, value: value, output: output)
                }
            }
            assertClose(actual, expected.values, fixture.name, tolerance: 0)
        }
    }

    func testSliceMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("slice") {
            guard let x = fixture.input("x"), let starts = fixture.ints("starts"), let ends = fixture.ints("ends"),
                  let axes = fixture.ints("axes"), let steps = fixture.ints("steps") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let expected = try Fixtures.expected(fixture)
            let region = try DataMovement.resolveSlice(shape: x.shape, starts: starts, ends: ends, axes: axes, steps: steps)
            XCTAssertEqual(region.outputShape, expected.shape, fixture.name)
            let actual = try withOutput(expected.values.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try DataMovement.slice(input: source, shape: x.shape, region: region, output: output)
                }
            }
            assertClose(actual, expected.values, fixture.name, tolerance: 0)
        }
    }

    func testGatherMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("gather") {
            guard let x = fixture.input("x"), let indexTensor = fixture.input("indices"), let axis = fixture.int("axis") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let indices = try Fixtures.int64s(indexTensor)
            let expected = try Fixtures.expected(fixture)
            let actual = try withOutput(expected.values.count) { output in
                try input.withUnsafeBufferPointer { source in
                    try indices.withUnsafeBufferPointer { picks in
                        try DataMovement.gather(input: source, outer: x.shape[..<axis].reduce(1, *), axisExtent: x.shape[axis],
                                                inner: x.shape[(axis + 1)...].reduce(1, *), indices: picks, output: output)
                    }
                }
            }
            assertClose(actual, expected.values, fixture.name, tolerance: 0)
        }
    }

    /// ONNX idioms: reversing with INT64 extremes, and a step longer than the axis.
    func testSliceHandlesExtremeArguments() throws {
        let input: [Float] = [0, 1, 2, 3, 4]
        let reversed = try DataMovement.resolveSlice(shape: [5], starts: [-1], ends: [Int.min], steps: [-1])
        XCTAssertEqual(reversed.outputShape, [5])
        let hugeStep = try DataMovement.resolveSlice(shape: [5], starts: [1], ends: [Int.max], steps: [Int.max])
        XCTAssertEqual(hugeStep.outputShape, [1])
        for (region, expected) in [(reversed, [Float]([4, 3, 2, 1, 0])), (hugeStep, [1])] {
            let actual = try withOutput(expected.count) { output in
                try input.withUnsafeBufferPointer {
                    try DataMovement.slice(input: $0, shape: [5], region: region, output: output)
                }
            }
            XCTAssertEqual(actual, expected)
        }
        XCTAssertThrowsError(try DataMovement.resolveSlice(shape: [5], starts: [0], ends: [5], steps: [0]))
    }

    func testOutOfRangeGatherIndexThrows() {
        let input: [Float] = [1, 2, 3]
        let indices: [Int32] = [3]
        var output: [Float] = [0]
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try indices.withUnsafeBufferPointer { picks in
                try output.withUnsafeMutableBufferPointer {
                    try DataMovement.gather(input: source, outer: 1, axisExtent: 3, inner: 1, indices: picks, output: $0)
                }
            }
        })
    }
}
