import Foundation
import KeelImages
import KeelIR
import KeelRuntime

/// Turns image files into the tensor a graph's image input expects, using the preprocessing the
/// input declares (size, layout, preset), so users never hand-write Keras's or torchvision's maths.
public struct ImageFeeder: Sendable {
    public let inputName: String
    public let preprocessing: ImagePreprocessing
    /// The input's batch symbol, bound to the number of images.
    private let batchSymbol: String?

    /// `preset` overrides the input's declared preprocessing. A model that declares none (every
    /// ONNX model) needs one: guessing raw 0–255 pixels would give silently wrong features for
    /// a network trained on normalised ones, so `raw` (or `none`) must be asked for.
    public init(graph: Graph, preset: String? = nil) throws {
        guard graph.inputs.count == 1, var input = graph.inputs.first else {
            throw ModelFileError(path: graph.source ?? graph.name,
                                 reason: "images need a model with one image input; this one has \(graph.inputs.count) inputs")
        }
        if let preset { input.preprocess = preset }
        guard input.preprocess != nil else {
            throw ModelFileError(path: graph.source ?? graph.name,
                                 reason: "input '\(input.name)' declares no image preprocessing; choose one with --preprocess "
                                     + "(keras_vgg16, torch, or none for raw 0–255 pixels)")
        }
        inputName = input.name
        preprocessing = try ImagePreprocessing(input: input)
        if case .symbol(let symbol)? = input.type.shape.dims.first { batchSymbol = symbol } else { batchSymbol = nil }
    }

    public func decode(_ path: String) throws -> Image {
        try Image(contentsOfFile: path)
    }

    public func tensor(for images: [Image]) throws -> Tensor {
        try Tensor(shape: preprocessing.batchShape(count: images.count), values: preprocessing.batch(images))
    }

    /// One file decoded and brought to the input's size at once, so a batch holds one decoded
    /// full-size image at a time rather than all of them (12 large PNGs once peaked at 3.8 GB).
    public func values(forFile path: String) throws -> [Float] {
        preprocessing.tensor(for: try decode(path))
    }

    /// Stacks rows from `values(forFile:)` into the batch tensor.
    public func tensor(rows: [[Float]]) throws -> Tensor {
        var values: [Float] = []
        values.reserveCapacity(rows.reduce(0) { $0 + $1.count })
        for row in rows { values.append(contentsOf: row) }
        return try Tensor(shape: preprocessing.batchShape(count: rows.count), values: values)
    }

    /// The binding of `count` images, for building (and checking the memory of) a plan before
    /// any image is decoded.
    public func bindings(count: Int) -> [String: Int] {
        batchSymbol.map { [$0: count] } ?? [:]
    }
}

/// The image files behind command-line arguments: files as given, folders expanded (recursively,
/// sorted by path so every machine sees the same order; `Shard` splits the list).
public enum ImageFiles {
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    public static func list(_ arguments: [String]) throws -> [String] {
        var files: [String] = []
        for argument in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                throw ModelFileError(path: argument, reason: "no such file or folder")
            }
            guard isDirectory.boolValue else {
                files.append(argument)
                continue
            }
            guard let enumerator = FileManager.default.enumerator(atPath: argument) else {
                throw ModelFileError(path: argument, reason: "cannot read the folder")
            }
            let found = enumerator.compactMap { $0 as? String }
                .filter { extensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
                .sorted()
                .map { (argument as NSString).appendingPathComponent($0) }
            guard !found.isEmpty else {
                throw ModelFileError(path: argument, reason: "the folder has no .jpg, .jpeg or .png files")
            }
            files.append(contentsOf: found)
        }
        return files
    }
}
