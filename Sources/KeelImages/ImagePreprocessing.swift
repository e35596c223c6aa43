import KeelIR

/// The pixel normalisations a graph input can declare (`preprocess: keras_vgg16`), each matching
/// the function the model was trained with, so users pass photos rather than hand-made tensors.
public enum ImagePreset: String, CaseIterable, Sendable {
    /// `keras.applications.vgg16.preprocess_input` ("caffe" mode): RGB to BGR, then subtract the
    /// ImageNet channel means (B 103.939, G 116.779, R 123.68) from 0...255 values; no scaling.
    case kerasVGG16 = "keras_vgg16"
    /// torchvision's `ToTensor` + `Normalize`: RGB in 0...1, minus mean (0.485, 0.456, 0.406),
    /// divided by std (0.229, 0.224, 0.225).
    case torch
    /// RGB values 0...255 unchanged, for models that normalise inside the graph.
    case raw

    /// Accepts the preset names and `none` (a synonym of `raw`).
    public init(name: String) throws {
        if name == "none" { self = .raw; return }
        guard let preset = ImagePreset(rawValue: name) else {
            throw PreprocessingError.unknownPreset(name)
        }
        self = preset
    }

    public static var names: [String] { allCases.map(\.rawValue) + ["none"] }

    /// Maps one pixel's resized RGB values (0...255) to the model's three channels, in the
    /// model's channel order. Float32 arithmetic throughout, as Keras (NumPy float32 arrays) and
    /// torchvision (float32 tensors) compute it, so results agree to the last bit.
    func channels(red: Float, green: Float, blue: Float) -> (Float, Float, Float) {
        switch self {
        case .kerasVGG16:
            return (blue - 103.939, green - 116.779, red - 123.68)
        case .torch:
            return ((red / 255 - 0.485) / 0.229, (green / 255 - 0.456) / 0.224, (blue / 255 - 0.406) / 0.225)
        case .raw:
            return (red, green, blue)
        }
    }
}

/// Turns decoded images into the float tensor a graph input expects: resize to the input's
/// height×width (Pillow-compatible antialiased bilinear, see `ResampleAxis`), apply the preset,
/// lay out as NHWC or NCHW.
public struct ImagePreprocessing: Equatable, Sendable, CustomStringConvertible {
    public var preset: ImagePreset
    public var height: Int
    public var width: Int
    public var layout: Layout

    public init(preset: ImagePreset, height: Int, width: Int, layout: Layout = .nhwc) {
        precondition(height > 0 && width > 0, "ImagePreprocessing needs a positive height and width")
        self.preset = preset
        self.height = height
        self.width = width
        self.layout = layout
    }

    /// The preprocessing a rank-4 image input declares: its preset (`raw` when none is given),
    /// its layout (NHWC unless declared) and the fixed height, width and 3 channels of its shape.
    public init(input: GraphInput) throws {
        let layout = input.layout ?? .nhwc
        let shape = input.type.shape
        func fail(_ reason: String) -> PreprocessingError {
            .notAnImageInput(input: input.name, location: input.location, reason: reason)
        }
        guard shape.rank == 4 else {
            throw fail("its shape \(shape) has rank \(shape.rank), not 4 (\(layout == .nhwc ? "N,H,W,C" : "N,C,H,W"))")
        }
        guard let height = shape[layout.heightAxis].value, let width = shape[layout.widthAxis].value,
              height > 0, width > 0 else {
            throw fail("its height and width in \(shape) must be fixed positive sizes to resize images to")
        }
        guard shape[layout.channelAxis].value == 3 else {
            throw fail("its shape \(shape) has \(shape[layout.channelAxis]) channels where RGB images give 3")
        }
        let preset: ImagePreset
        do {
            preset = try ImagePreset(name: input.preprocess ?? "raw")
        } catch {
            throw PreprocessingError.unknownPreset(input.preprocess ?? "", input: input.name, location: input.location)
        }
        self.init(preset: preset, height: height, width: width, layout: layout)
    }

    /// For logs: "keras_vgg16, bilinear resize to 224×224, NHWC".
    public var description: String {
        "\(preset.rawValue), bilinear resize to \(height)×\(width), \(layout.rawValue.uppercased())"
    }

    /// One image's shape: [H, W, 3] or [3, H, W].
    public var imageShape: [Int] { layout == .nhwc ? [height, width, 3] : [3, height, width] }

    /// The shape of `count` images stacked: [count, H, W, 3] or [count, 3, H, W].
    public func batchShape(count: Int) -> [Int] { [count] + imageShape }

    /// One image's values in `imageShape` order.
    public func tensor(for image: Image) -> [Float] {
        var values = [Float](repeating: 0, count: height * width * 3)
        write(image, into: &values, at: 0)
        return values
    }

    /// The images stacked in `batchShape(count: images.count)` order.
    public func batch(_ images: [Image]) -> [Float] {
        let size = height * width * 3
        var values = [Float](repeating: 0, count: images.count * size)
        for (index, image) in images.enumerated() {
            write(image, into: &values, at: index * size)
        }
        return values
    }

    private func write(_ image: Image, into values: inout [Float], at start: Int) {
        let resized = image.resampled(width: width, height: height)
        let plane = height * width
        for pixel in 0..<plane {
            let (first, second, third) = preset.channels(
                red: resized[pixel * 3], green: resized[pixel * 3 + 1], blue: resized[pixel * 3 + 2])
            if layout == .nhwc {
                values[start + pixel * 3] = first
                values[start + pixel * 3 + 1] = second
                values[start + pixel * 3 + 2] = third
            } else {
                values[start + pixel] = first
                values[start + plane + pixel] = second
                values[start + 2 * plane + pixel] = third
            }
        }
    }
}

/// Why a graph input cannot take images. Prints as one line, located at the input's declaration.
public enum PreprocessingError: Error, Equatable, CustomStringConvertible {
    case unknownPreset(String, input: String? = nil, location: SourceLocation? = nil)
    case notAnImageInput(input: String, location: SourceLocation?, reason: String)

    public var description: String {
        switch self {
        case .unknownPreset(let name, let input, let location):
            let prefix = location.map { "\($0): error: " } ?? ""
            let owner = input.map { " on input '\($0)'" } ?? ""
            return "\(prefix)unknown preprocess preset '\(name)'\(owner) (known: \(ImagePreset.names.joined(separator: ", ")))"
        case .notAnImageInput(let input, let location, let reason):
            let prefix = location.map { "\($0): error: " } ?? ""
            return "\(prefix)input '\(input)' cannot take images: \(reason)"
        }
    }
}
