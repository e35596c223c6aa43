import Foundation
import Keel
import KeelFormat
import KeelImages
import KeelRuntime

/// The readers fuzzing exercises, each fed one input as a whole file: the libFuzzer harnesses
/// in Fuzz/ call these, and the test suite replays the committed corpus and every crash input
/// through the same code without a fuzzer build. Errors are the expected outcome for most
/// inputs; a crash, hang or leak is the bug.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// .keel text: parse, expand, lower, infer shapes.
    case keel
    /// .npy tensors.
    case npy
    /// ONNX models: protobuf, import, shape inference.
    case onnx
    /// Compiled .keelc files, weights verified.
    case keelc
    /// PNG and JPEG images.
    case image

    var fileExtension: String {
        switch self {
        case .keel: return "keel"
        case .npy: return "npy"
        case .onnx: return "onnx"
        case .keelc: return "keelc"
        case .image: return "img"
        }
    }

    /// Runs one input; returns whether it was accepted (for the corpus statistics only).
    @discardableResult
    public func run(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            switch self {
            case .keel:
                let source = String(decoding: bytes, as: UTF8.self)
                _ = try ModelLoader.infer(try parseKeelGraph(source: source, path: FuzzTarget.scratch + "/input.keel"))
            case .image:
                _ = try Image(data: Data(bytes), name: "input")
            case .npy, .onnx, .keelc:
                let path = FuzzTarget.scratch + "/input." + fileExtension
                guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return false }
                switch self {
                case .npy: _ = try NpyFile.read(path: path)
                case .onnx: _ = try ModelLoader.load(path: path)
                default: _ = try ModelLoader.infer(try CompiledArtifact.read(path: path, verify: true).graph)
                }
            }
            return true
        } catch {
            return false
        }
    }

    /// A folder of this process's own for inputs that must be files (and for relative includes).
    static let scratch: String = {
        let folder = NSTemporaryDirectory() + "keel-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()
}
