/// Loads the ONNX Runtime reference cases written by tools/gen_kernel_fixtures.py and compares
/// kernel output against them with the project-wide tolerance |a - b| <= 1e-4 + 1e-4·|b|.
import Foundation
import KeelKernels
import XCTest

/// A JSON attribute value from the manifest.
enum FixtureValue: Decodable {
    case number(Double)
    case string(String)
    case list([FixtureValue])
    case null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else {
            self = .list(try container.decode([FixtureValue].self))
        }
    }
}

struct FixtureTensor: Decodable {
    let name: String
    let shape: [Int]
    let dtype: String
    let file: String

    var count: Int { shape.reduce(1, *) }
}

struct FixtureCase: Decodable {
    let name: String
    let op: String
    let attrs: [String: FixtureValue]
    let inputs: [FixtureTensor]
    let outputs: [FixtureTensor]

    func int(_ key: String) -> Int? {
        if case let .number(value)? = attrs[key] { return Int(value) }
        return nil
    }

    func float(_ key: String) -> Float? {
        if case let .number(value)? = attrs[key] { return Float(value) }
        return nil
    }

    func string(_ key: String) -> String? {
        if case let .string(value)? = attrs[key] { return value }
        return nil
    }

    func ints(_ key: String) -> [Int]? {
        guard case let .list(values)? = attrs[key] else { return nil }
        return values.compactMap { value -> Int? in
            if case let .number(number) = value { return Int(number) }
            return nil
        }
    }

    func floats(_ key: String) -> [Float]? {
        guard case let .list(values)? = attrs[key] else { return nil }
        return values.compactMap { value -> Float? in
            if case let .number(number) = value { return Float(number) }
            return nil
        }
    }

    func input(_ name: String) -> FixtureTensor? { inputs.first { $0.name == name } }
    var output: FixtureTensor? { outputs.first }
}

private struct Manifest: Decodable {
    let cases: [FixtureCase]
}

enum Fixtures {
    static let directory: URL? = Bundle.module.url(forResource: "Fixtures", withExtension: nil)

    static let all: [FixtureCase] = {
        guard let directory,
              let data = try? Data(contentsOf: directory.appendingPathComponent("manifest.json")),
              let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return manifest.cases
    }()

    /// The cases for one op; fails the test when there are none (a broken bundle must not pass).
    static func cases(_ op: String, file: StaticString = #filePath, line: UInt = #line) -> [FixtureCase] {
        let found = all.filter { $0.op == op }
        XCTAssertFalse(found.isEmpty, "no fixtures for \(op)", file: file, line: line)
        return found
    }

    static func floats(_ tensor: FixtureTensor) throws -> [Float] {
        let data = try Data(contentsOf: try url(tensor))
        XCTAssertEqual(tensor.dtype, "f32")
        XCTAssertEqual(data.count, tensor.count * 4, tensor.file)
        return (0..<tensor.count).map { index in
            let bits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[data.startIndex + index * 4 + $1]) << (8 * $1) }
            return Float(bitPattern: bits)
        }
    }

    static func int64s(_ tensor: FixtureTensor) throws -> [Int64] {
        let data = try Data(contentsOf: try url(tensor))
        XCTAssertEqual(tensor.dtype, "i64")
        return (0..<tensor.count).map { index in
            let bits = (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[data.startIndex + index * 8 + $1]) << (8 * $1) }
            return Int64(bitPattern: bits)
        }
    }

    private static func url(_ tensor: FixtureTensor) throws -> URL {
        guard let directory else { throw CocoaError(.fileNoSuchFile) }
        return directory.appendingPathComponent(tensor.file)
    }

    /// Loads a named input of a case, failing clearly when the manifest lacks it.
    static func input(_ fixture: FixtureCase, _ name: String) throws -> [Float] {
        guard let tensor = fixture.input(name) else {
            XCTFail("\(fixture.name): no input \(name)")
            throw CocoaError(.fileNoSuchFile)
        }
        return try floats(tensor)
    }

    static func expected(_ fixture: FixtureCase) throws -> (values: [Float], shape: [Int]) {
        guard let tensor = fixture.output else {
            XCTFail("\(fixture.name): no output")
            throw CocoaError(.fileNoSuchFile)
        }
        return (try floats(tensor), tensor.shape)
    }
}

/// Asserts element-wise closeness with |a - b| <= 1e-4 + 1e-4·|b| (b is the reference).
func assertClose(_ actual: [Float], _ expected: [Float], _ label: String, tolerance: Float = 1e-4,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(label): element count", file: file, line: line)
    var failures = 0
    for index in 0..<min(actual.count, expected.count) {
        let (a, b) = (actual[index], expected[index])
        if !(abs(a - b) <= tolerance + tolerance * abs(b)) {
            failures += 1
            if failures <= 3 {
                XCTFail("\(label)[\(index)]: got \(a), expected \(b)", file: file, line: line)
            }
        }
    }
    if failures > 3 { XCTFail("\(label): \(failures) mismatches in total", file: file, line: line) }
}

/// Runs `body` with a zeroed output buffer of `count` floats and returns it.
func withOutput(_ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows -> [Float] {
    var output = [Float](repeating: 0, count: count)
    try output.withUnsafeMutableBufferPointer { try body($0) }
    return output
}

/// x rounded to the nearest bf16, ties to even: the top 16 bits after adding half an ulp.
func roundedToBF16(_ x: Float) -> Float {
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

/// Deterministic pseudo-random values in [-1, 1) for tests that build their own data.
func seededValues(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
}

/// Runs `body` with Keel's kernel table filled from each capability set this CPU has in turn
/// (none = the portable fallbacks), then restores the detected set.
func forEachCapabilitySet(_ body: (CPUCapabilities) throws -> Void) rethrows {
    defer { CPUCapabilities.restoreDetected() }
    for capabilities in CPUCapabilities.everyPathPresent {
        CPUCapabilities.restrict(to: capabilities)
        try body(capabilities)
    }
}

/// `forEachCapabilitySet`, first printing one line per capability this CPU lacks, so a run on
/// a smaller machine says which kernel paths `family` did not test there and why (nil: say nothing).
func forEachCapabilitySet(testing family: String?, _ body: (CPUCapabilities) throws -> Void) rethrows {
    let named: [(CPUCapabilities, String)] = [(.avx2, "AVX2"), (.avx512, "AVX-512"), (.avx512BF16, "AVX512_BF16"),
                                              (.amxBF16, "AMX-BF16"), (.neon, "NEON")]
    if let family {
        for (capability, name) in named where !CPUCapabilities.detected.contains(capability) {
            print("\(family): \(name) kernels skipped: this CPU does not have \(name)")
        }
    }
    try forEachCapabilitySet(body)
}

/// Direct convolution, written plainly, in double: the independent reference for the tiled and
/// Winograd paths.
func directConvolution(_ input: [Float], hwio: [Float], bias: [Float], _ geometry: Conv2DGeometry) -> [Float] {
    let output = geometry.output
    let (inputPerGroup, outputPerGroup) = (geometry.inputChannelsPerGroup, geometry.outputChannelsPerGroup)
    var result = [Float](repeating: 0, count: geometry.outputElementCount)
    for image in 0..<geometry.batch {
        for row in 0..<output.height {
            for column in 0..<output.width {
                for outputChannel in 0..<geometry.outputChannels {
                    let group = outputChannel / outputPerGroup
                    var sum = Double(bias[outputChannel])
                    for kernelRow in 0..<geometry.kernel.height {
                        let inputRow = row * geometry.stride.height - geometry.padding.top
                            + kernelRow * geometry.dilation.height
                        guard inputRow >= 0 && inputRow < geometry.input.height else { continue }
                        for kernelColumn in 0..<geometry.kernel.width {
                            let inputColumn = column * geometry.stride.width - geometry.padding.left
                                + kernelColumn * geometry.dilation.width
                            guard inputColumn >= 0 && inputColumn < geometry.input.width else { continue }
                            for channel in 0..<inputPerGroup {
                                let inputChannel = group * inputPerGroup + channel
                                let value = geometry.layout == .nhwc
                                    ? input[((image * geometry.input.height + inputRow) * geometry.input.width
                                             + inputColumn) * geometry.inputChannels + inputChannel]
                                    : input[((image * geometry.inputChannels + inputChannel) * geometry.input.height
                                             + inputRow) * geometry.input.width + inputColumn]
                                let weight = hwio[((kernelRow * geometry.kernel.width + kernelColumn) * inputPerGroup
                                                   + channel) * geometry.outputChannels + outputChannel]
                                sum += Double(value) * Double(weight)
                            }
                        }
                    }
                    let index = geometry.layout == .nhwc
                        ? ((image * output.height + row) * output.width + column) * geometry.outputChannels + outputChannel
                        : ((image * geometry.outputChannels + outputChannel) * output.height + row) * output.width + column
                    result[index] = Float(sum)
                }
            }
        }
    }
    return result
}

/// A one-group filter from Keras's HWIO layout, packed for im2col.
func packedWeights(_ hwio: [Float], _ geometry: Conv2DGeometry) throws -> PackedConv2DWeights {
    try hwio.withUnsafeBufferPointer {
        try PackedConv2DWeights(hwio: $0, kernel: geometry.kernel, inputChannelsPerGroup: geometry.inputChannels,
                                outputChannels: geometry.outputChannels)
    }
}

/// `Conv2D.apply` with `algorithm` on one-thread scratch (filled with NaN, so reading it unwritten shows).
func convolve(_ input: [Float], _ weights: PackedConv2DWeights, bias: [Float], activation: UnaryOperation,
              _ geometry: Conv2DGeometry, algorithm: Conv2DAlgorithm, threads: Int) throws -> [Float] {
    var scratch = [Float](repeating: .nan, count: Conv2D.scratchSize(for: geometry, algorithm: algorithm))
    return try withOutput(geometry.outputElementCount) { output in
        try input.withUnsafeBufferPointer { source in
            try bias.withUnsafeBufferPointer { biasBuffer in
                try scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                    try Conv2D.apply(input: source, weights: weights, bias: biasBuffer, activation: activation,
                                     output: output, geometry: geometry, scratch: scratchBuffer,
                                     algorithm: algorithm, context: KernelContext(threads: threads))
                }
            }
        }
    }
}
