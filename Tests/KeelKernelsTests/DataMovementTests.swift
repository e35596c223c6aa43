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
