import KeelIR
import KeelKernels

/// resize: the IR's ONNX-spelled modes become the kernel's geometry.
extension KernelLowering {
    static func lowerResize(_ operands: StepOperands) throws -> Step {
        let attributes = operands.attributes
        let layout = Layout(rawValue: try attributes.string("layout")) ?? .nhwc
        let (inputShape, outputShape) = (operands.inputShapes[0], operands.outputShapes[0])
        guard inputShape.count == 4, outputShape.count == 4 else {
            throw operands.unsupported("needs rank-4 images, got \(Shape(known: inputShape))")
        }
        let scales = try attributes.optionalFloats("scales")
        let roi = try attributes.floats("roi")
        let mode = try attributes.string("coordinates")
        func axis(_ position: Int, _ axisIndex: Int) throws -> ResizeAxis {
            let coordinates: ResizeCoordinates
            switch mode {
            case "half_pixel": coordinates = .halfPixel
            case "half_pixel_symmetric": coordinates = .halfPixelSymmetric
            case "pytorch_half_pixel": coordinates = .pytorchHalfPixel
            case "align_corners": coordinates = .alignCorners
            case "asymmetric": coordinates = .asymmetric
            case "tf_half_pixel_for_nn": coordinates = .tfHalfPixelForNearest
            case "tf_crop_and_resize":
                guard roi.count == 4 else { throw operands.unsupported("roi must have 4 entries") }
                coordinates = .cropAndResize(start: roi[position], end: roi[position + 2])
            default: throw operands.unsupported("coordinate mapping '\(mode)' has no kernel")
            }
            return ResizeAxis(input: inputShape[axisIndex], output: outputShape[axisIndex],
                              scale: scales.map { Double($0[position]) }, coordinates: coordinates)
        }
        let interpolation: ResizeInterpolation
        switch try attributes.string("mode") {
        case "linear":
            interpolation = try attributes.int("antialias") != 0 ? .antialiasedLinear : .linear
        case "cubic":
            interpolation = .cubic(coefficient: try attributes.float("cubic_coeff_a"),
                                   excludeOutside: try attributes.int("exclude_outside") != 0)
        default:
            switch try attributes.string("nearest_mode") {
            case "round_prefer_ceil": interpolation = .nearest(.roundPreferCeil)
            case "floor": interpolation = .nearest(.floor)
            case "ceil": interpolation = .nearest(.ceil)
            default: interpolation = .nearest(.roundPreferFloor)
            }
        }
        let geometry = ResizeGeometry(batch: inputShape[0], channels: inputShape[layout.channelAxis],
                                      height: try axis(0, layout.heightAxis), width: try axis(1, layout.widthAxis),
                                      interpolation: interpolation, layout: layout.kernelLayout,
                                      extrapolationValue: try attributes.float("extrapolation_value"))
        return try operands.unaryStep { input, output, context in
            try Resize.apply(input: input, output: output, geometry: geometry, context: context)
        }
    }
}
