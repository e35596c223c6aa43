import KeelIR

/// ConvTranspose over 1 to 3 spatial axes. `auto_pad` and `output_shape` are resolved here into
/// explicit pads plus output padding, which needs the input's spatial extents.
func translateConvTranspose(_ context: NodeContext) throws {
    let kernel = try weightConstant(context, 1, what: "kernel")
    let rank = kernel.shape.count - 2
    guard (1...3).contains(rank) else { throw context.fail("only 1-D, 2-D and 3-D transposed convolutions are supported") }
    if context.hasInput(2) { _ = try weightConstant(context, 2, what: "bias") }
    let window = Array(kernel.shape[2...])
    if let declared = try context.ints("kernel_shape"), declared != window {
        throw context.fail("kernel_shape \(declared) disagrees with the kernel's shape \(kernel.shape)")
    }
    func list(_ key: String, _ fill: Int, minimum: Int) throws -> [Int] {
        let values = try context.ints(key) ?? Array(repeating: fill, count: rank)
        guard values.count == rank, values.allSatisfy({ $0 >= minimum && $0 <= 1 << 24 }) else {
            throw context.fail("'\(key)' must be \(rank) integers of at least \(minimum), got \(values)")
        }
        return values
    }
    let strides = try list("strides", 1, minimum: 1)
    let dilations = try list("dilations", 1, minimum: 1)
    var outputPadding = try list("output_padding", 0, minimum: 0)
    let groups = try context.int("group", default: 1)
    let input = context.shape(0)
    let extents = (0..<rank).map { axis in input.flatMap { $0.count == rank + 2 ? $0[2 + axis]?.value : nil } }
    let autoPad = try context.string("auto_pad", default: "NOTSET")
    var requested = try context.ints("output_shape")
    if let shape = requested, shape.count == rank + 2 { requested = Array(shape[2...]) }
    var pads = Array(repeating: 0, count: 2 * rank)
    if requested != nil || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
        // Pad (crop) the full result down to the requested extent, or to input·stride for the
        // SAME modes; a requested extent beyond the full result grows the output padding.
        for axis in 0..<rank {
            guard let extent = extents[axis], extent <= 1 << 24 else {
                throw context.fail("output_shape and auto_pad need the input's spatial extents, which are not known at import time")
            }
            let full = strides[axis] * (extent - 1) + outputPadding[axis] + (window[axis] - 1) * dilations[axis] + 1
            let target = requested.map { $0.count == rank ? $0[axis] : -1 } ?? extent * strides[axis]
            guard target >= 1, target <= 1 << 24 else { throw context.fail("output_shape \(requested ?? []) must hold \(rank) positive extents") }
            let total = max(0, full - target)
            let smaller = total / 2
            (pads[axis], pads[rank + axis]) = autoPad == "SAME_UPPER" ? (smaller, total - smaller) : (total - smaller, smaller)
            outputPadding[axis] += target - (full - total)
        }
    } else if autoPad == "NOTSET" || autoPad.isEmpty {
        pads = try context.ints("pads") ?? pads
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 24 }) else {
            throw context.fail("'pads' must be \(2 * rank) non-negative numbers, got \(pads)")
        }
    } else if autoPad != "VALID" {
        throw context.fail("auto_pad '\(autoPad)' is not supported")
    }
    let inputs = [try context.input(0), try context.input(1)] + (try context.optionalInput(2).map { [$0] } ?? [])
    var shape: [Dim?] = [input?.first ?? nil, .known(kernel.shape[1] * max(groups, 1))]
    for axis in 0..<rank {
        shape.append(extents[axis].map { extent in
            .known(strides[axis] * (extent - 1) + outputPadding[axis] + (window[axis] - 1) * dilations[axis] + 1
                   - pads[axis] - pads[rank + axis])
        })
    }
    context.emit(.convTranspose, inputs, ["strides": .ints(strides), "dilations": .ints(dilations), "pads": .ints(pads),
                                          "output_padding": .ints(outputPadding), "groups": .int(groups)], shape: shape)
}
