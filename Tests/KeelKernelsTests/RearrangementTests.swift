/// Split, tile and the depth/space block moves against ONNX Runtime fixtures (NHWC cases are
/// ONNX Runtime's NCHW results transposed), in both thread counts.
import KeelKernels
import XCTest

final class RearrangementTests: XCTestCase {
    func testSplitMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("split") {
            guard let x = fixture.input("x"), let rawAxis = fixture.int("axis"), let sizes = fixture.ints("sizes") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let axis = rawAxis < 0 ? rawAxis + x.shape.count : rawAxis
            let (outer, inner) = (x.shape[..<axis].reduce(1, *), x.shape[(axis + 1)...].reduce(1, *))
            let input = try Fixtures.floats(x)
            let counts = sizes.map { outer * $0 * inner }
            for threads in [1, 2] {
                // One arena holds every piece, cut into consecutive buffers.
                let arena = try withOutput(counts.reduce(0, +)) { storage in
                    var start = 0
                    let pieces = counts.map { count -> UnsafeMutableBufferPointer<Float> in
                        defer { start += count }
                        return UnsafeMutableBufferPointer(rebasing: storage[start..<(start + count)])
                    }
                    try input.withUnsafeBufferPointer { source in
                        try DataMovement.split(input: source, axisExtents: sizes, outer: outer, inner: inner, outputs: pieces,
                                               context: KernelContext(threads: threads))
                    }
                }
                var start = 0
                for (output, count) in zip(fixture.outputs, counts) {
                    assertClose(Array(arena[start..<(start + count)]), try Fixtures.floats(output),
                                "\(fixture.name) \(output.name) threads \(threads)", tolerance: 0)
                    start += count
                }
            }
        }
    }

    func testTileMatchesONNXRuntime() throws {
        for fixture in Fixtures.cases("tile") {
            guard let x = fixture.input("x"), let repeats = fixture.ints("repeats") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let input = try Fixtures.floats(x)
            let expected = try Fixtures.expected(fixture)
            for threads in [1, 2] {
                let actual = try withOutput(expected.values.count) { output in
                    try input.withUnsafeBufferPointer { source in
                        try DataMovement.tile(input: source, shape: x.shape, repeats: repeats, output: output,
                                              context: KernelContext(threads: threads))
                    }
                }
                assertClose(actual, expected.values, "\(fixture.name) threads \(threads)", tolerance: 0)
            }
        }
    }

    func testBlockMovesMatchONNXRuntime() throws {
        let fixtures = Fixtures.cases("depth_to_space") + Fixtures.cases("space_to_depth")
        XCTAssertEqual(fixtures.count, 6)
        for fixture in fixtures {
            guard let x = fixture.input("x"), let block = fixture.int("block_size") else {
                return XCTFail("\(fixture.name): incomplete case")
            }
            let expected = try Fixtures.expected(fixture)
            let toSpace = fixture.op == "depth_to_space"
            let layout: ActivationLayout = fixture.string("layout") == "nchw" ? .nchw : .nhwc
            // The geometry describes the depth side.
            let depth = toSpace ? x.shape : expected.shape
            let (channels, height, width) = layout == .nchw ? (depth[1], depth[2], depth[3]) : (depth[3], depth[1], depth[2])
            let geometry = BlockGeometry(batch: depth[0], channels: channels, height: height, width: width, blockSize: block,
                                         order: fixture.string("mode") == "CRD" ? .columnRowDepth : .depthColumnRow,
                                         layout: layout)
            let input = try Fixtures.floats(x)
            let actual = try withOutput(expected.values.count) { output in
                try input.withUnsafeBufferPointer { source in
                    if toSpace {
                        try DataMovement.depthToSpace(input: source, geometry: geometry, output: output)
                    } else {
                        try DataMovement.spaceToDepth(input: source, geometry: geometry, output: output)
                    }
                }
            }
            assertClose(actual, expected.values, fixture.name, tolerance: 0)
        }
    }

    func testBlockMoveRejectsChannelsThatDoNotFormBlocks() {
        let geometry = BlockGeometry(batch: 1, channels: 6, height: 2, width: 2, blockSize: 2)
        let input = [Float](repeating: 0, count: 24)
        var output = [Float](repeating: 0, count: 24)
        XCTAssertThrowsError(try input.withUnsafeBufferPointer { source in
            try output.withUnsafeMutableBufferPointer { try DataMovement.depthToSpace(input: source, geometry: geometry, output: $0) }
        })
    }
}
