import KeelIR

/// Resize over the height and width of an NCHW image. The output size is resolved here from
/// `sizes` (with `keep_aspect_ratio_policy`) or `scales`, and the scale the coordinate mapping
/// divides by travels along, since ONNX uses the given scale rather than output/input.
func translateResize(_ context: NodeContext) throws {
    guard let input = context.shape(0), input.count == 4, let height = input[2]?.value, let width = input[3]?.value,
          height > 0, width > 0, height <= Int(Int32.max), width <= Int(Int32.max) else {
        throw context.fail("needs a rank-4 NCHW input whose height and width are known at import time")
    }
    let old = context.opset < 11
    let mode = try context.string("mode", default: "nearest")
    guard ["nearest", "linear", "cubic"].contains(mode) else {
        throw context.fail("mode '\(mode)' is not supported (nearest, linear and cubic are)")
    }
    let antialias = try context.int("antialias", default: 0)
    guard mode != "cubic" || antialias == 0 else { throw context.fail("cubic resizing with antialias is not supported") }
    let coordinates = old ? "asymmetric" : try context.string("coordinate_transformation_mode", default: "half_pixel")
    guard OpRegistry.resizeCoordinateModes.contains(coordinates) else {
        throw context.fail("coordinate_transformation_mode '\(coordinates)' is not supported")
    }
    let nearestMode = old ? "floor" : try context.string("nearest_mode", default: "round_prefer_floor")
    guard OpRegistry.resizeNearestModes.contains(nearestMode) else { throw context.fail("nearest_mode '\(nearestMode)' is not supported") }
    let excludeOutside = try context.int("exclude_outside", default: 0)
    guard excludeOutside == 0 || mode == "cubic" else { throw context.fail("exclude_outside=1 applies to cubic resizing only") }
    let axes = try (context.ints("axes") ?? [0, 1, 2, 3]).map { $0 < 0 ? $0 + 4 : $0 }
    guard Set(axes).count == axes.count, axes.allSatisfy({ (0..<4).contains($0) }) else {
        throw context.fail("axes \(axes) must be distinct axes of a rank-4 input")
    }
    let extents = input.map { $0?.value }
    var roi = [Double](repeating: 0, count: 4) + [Double](repeating: 1, count: 4)
    if coordinates == "tf_crop_and_resize", let given = try context.constantFloats(1) {
        guard given.count == 2 * axes.count else { throw context.fail("roi has \(given.count) values for \(axes.count) axes") }
        for (position, axis) in axes.enumerated() {
            roi[axis] = Double(given[position])
            roi[4 + axis] = Double(given[axes.count + position])
        }
    }
    // Output extent and coordinate scale per axis; axes left out keep their extent.
    var outputs = extents
    var scales: [Double?] = Array(repeating: nil, count: 4)
    let (sizes, copiedAxes) = old ? (nil, []) : try resizeSizes(context, input: input)
    if let sizes, !sizes.isEmpty {
        guard sizes.count == axes.count, sizes.allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }) else {
            throw context.fail("sizes \(sizes) must be \(axes.count) positive extents")
        }
        let policy = try context.string("keep_aspect_ratio_policy", default: "stretch")
        switch policy {
        case "stretch":
            for (position, axis) in axes.enumerated() { outputs[axis] = copiedAxes.contains(position) ? extents[axis] : sizes[position] }
        case "not_larger", "not_smaller":
            // One scale for every listed axis, the largest that fits (or the smallest that covers).
            let ratios = try axes.enumerated().map { position, axis -> Double in
                guard let extent = extents[axis], extent > 0 else { throw context.fail("keep_aspect_ratio_policy needs known extents") }
                return Double(sizes[position]) / Double(extent)
            }
            guard let scale = policy == "not_larger" ? ratios.min() : ratios.max() else { throw context.fail("has no axes") }
            for axis in axes {
                outputs[axis] = extents[axis].map { Int((scale * Double($0)).rounded()) }
                scales[axis] = scale
            }
        default:
            throw context.fail("keep_aspect_ratio_policy '\(policy)' is not supported")
        }
    } else if let given = try context.constantFloats(old ? 1 : 2) {
        guard given.count == axes.count, given.allSatisfy({ $0 > 0 && $0.isFinite && $0 <= 65536 }) else {
            throw context.fail("scales \(given) must be \(axes.count) positive factors")
        }
        for (position, axis) in axes.enumerated() {
            let span = coordinates == "tf_crop_and_resize" ? roi[4 + axis] - roi[axis] : 1
            outputs[axis] = extents[axis].map { Int((Double($0) * span * Double(given[position])).rounded(.down)) }
            scales[axis] = Double(given[position])
        }
    } else {
        throw context.fail("needs scales or sizes")
    }
    guard outputs[0] == extents[0], outputs[1] == extents[1] else {
        throw context.fail("only height and width can be resized (batch and channels must keep their extents)")
    }
    guard let outputHeight = outputs[2], let outputWidth = outputs[3], outputHeight >= 1, outputWidth >= 1,
          outputHeight <= Int(Int32.max), outputWidth <= Int(Int32.max) else {
        throw context.fail("resizes \(height)×\(width) to an empty or oversized image")
    }
    var attributes: [String: AttributeValue] = [
        "layout": .string("nchw"), "size": .ints([outputHeight, outputWidth]), "mode": .string(mode),
        "coordinates": .string(coordinates), "nearest_mode": .string(nearestMode),
        "antialias": .int(antialias),
    ]
    if mode == "cubic" {
        attributes["cubic_coeff_a"] = .float(try context.float("cubic_coeff_a", default: -0.75))
        attributes["exclude_outside"] = .int(excludeOutside)
    }
    if scales[2] != nil || scales[3] != nil {
        attributes["scales"] = .floats([Float(scales[2] ?? Double(outputHeight) / Double(height)),
                                        Float(scales[3] ?? Double(outputWidth) / Double(width))])
    }
    if coordinates == "tf_crop_and_resize" {
        attributes["roi"] = .floats([roi[2], roi[3], roi[6], roi[7]].map { Float($0) })
        attributes["extrapolation_value"] = .float(try context.float("extrapolation_value", default: 0))
    }
    context.emit(.resize, [try context.input(0)], attributes,
                 shape: [input[0], input[1], .known(outputHeight), .known(outputWidth)])
}

/// Resize's `sizes`: constants, or computed from shapes with the batch (and channels) copied
/// from the input (`Concat(Shape(x)[0:2], [h, w])`, as PyTorch's interpolate(size=) writes it).
/// A copied run-time size is listed in `copied` (its entry is a placeholder 1).
private func resizeSizes(_ context: NodeContext, input: [Dim?]) throws -> (sizes: [Int]?, copied: Set<Int>) {
    guard context.hasInput(3), let elements = context.importer.values[context.node.inputs[3]]?.known?.elements else {
        return (try context.constantInts(3), [])
    }
    var copied: Set<Int> = []
    let sizes = try elements.enumerated().map { axis, element -> Int in
        if let extent = element.constant, extent >= 0, extent <= Int64(Int32.max) { return Int(extent) }
        guard axis < input.count, let dim = input[axis], element.dim == dim, dim.isSymbolic else {
            throw context.fail("sizes element \(axis) is a run-time size that is not the input's own extent on that axis")
        }
        copied.insert(axis)
        return 1
    }
    return (sizes, copied)
}
