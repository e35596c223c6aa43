extension OpRegistry {
    /// The coordinate mappings resize knows (ONNX `coordinate_transformation_mode` spellings).
    public static let resizeCoordinateModes = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                               "align_corners", "asymmetric", "tf_crop_and_resize",
                                               "tf_half_pixel_for_nn"]
    public static let resizeNearestModes = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]

    /// resize: an image to `size` over height and width.
    static var resizeSchema: OpSchema {
        OpSchema(kind: .resize, category: .pooling, inputs: [.init("x")], attributes: [
            OpSchema.layoutAttribute,
            .init("size", default: nil, "[height, width] of the output"),
            .init("scales", default: nil, "[height, width] factors the coordinate mapping divides by; size/input when absent"),
            .init("mode", default: .string("nearest"), "\"nearest\", \"linear\" or \"cubic\""),
            .init("coordinates", default: .string("half_pixel"), "how output positions map into the input (ONNX spellings)"),
            .init("nearest_mode", default: .string("round_prefer_floor"), "rounding of nearest positions"),
            .init("antialias", default: .int(0), "1: linear widens its filter when shrinking"),
            .init("cubic_coeff_a", default: .float(-0.75), "cubic: Keys' a (-0.75 PyTorch, -0.5 TensorFlow)"),
            .init("exclude_outside", default: .int(0), "cubic: 1 weighs taps past an edge 0 and renormalises"),
            .init("roi", default: .floats([0, 0, 1, 1]), "[top, left, bottom, right], normalised; tf_crop_and_resize only"),
            .init("extrapolation_value", default: .float(0), "tf_crop_and_resize: value outside the input"),
        ]) { context in
            let layout = try context.layout()
            let input = try context.requireImage(0, layout: layout)
            let reader = context.attributes
            let size = try reader.ints("size")
            guard size.count == 2, size.allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }) else {
                throw context.error("size \(AttributeValue.ints(size)) must be a positive [height, width]")
            }
            if let scales = try reader.optionalFloats("scales") {
                guard scales.count == 2, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                    throw context.error("scales \(AttributeValue.floats(scales)) must be two positive factors")
                }
            }
            let mode = try reader.choice("mode", ["nearest", "linear", "cubic"])
            let antialias = try reader.int("antialias")
            guard mode != "cubic" || antialias == 0 else {
                throw context.error("cubic resizing with antialias is not supported")
            }
            _ = try reader.float("cubic_coeff_a")
            _ = try reader.int("exclude_outside")
            _ = try reader.choice("coordinates", resizeCoordinateModes)
            _ = try reader.choice("nearest_mode", resizeNearestModes)
            guard try reader.floats("roi").count == 4 else { throw context.error("roi must be [top, left, bottom, right]") }
            _ = try reader.float("extrapolation_value")
            var shape = input.shape
            shape[layout.heightAxis] = .known(size[0])
            shape[layout.widthAxis] = .known(size[1])
            return [TensorType(input.dtype, shape)]
        }
    }
}
