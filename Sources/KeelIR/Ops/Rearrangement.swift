extension OpRegistry {
    /// Ops that cut, repeat or regroup elements: split, expand, tile, depth_to_space and
    /// space_to_depth.
    static var rearrangementSchemas: [OpSchema] {
        [
            OpSchema(kind: .split, category: .dataMovement, inputs: [.init("x")], outputCount: Int.max, minimumOutputCount: 1,
                     attributes: [.init("axis", default: .int(0)),
                                  .init("sizes", default: nil, "extent of each piece; equal pieces when absent")]) { context in
                let input = try context.type(0)
                let axis = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
                let pieces = context.node.outputs.count
                guard let extent = input.shape[axis].value else {
                    throw context.error("cannot split symbolic dimension \(input.shape[axis]) of \(context.quote(0, input))")
                }
                let sizes = try splitSizes(context, extent: extent, pieces: pieces)
                return sizes.map { size in
                    var shape = input.shape
                    shape[axis] = .known(size)
                    return TensorType(input.dtype, shape)
                }
            },
            OpSchema(kind: .expand, category: .dataMovement, reference: { try $0.broadcast { $0[0] } }, inputs: [.init("x")],
                     attributes: [.init("shape", default: nil, "broadcast with the input's shape, NumPy rules"),
                                  .init("symbols", default: nil, "per axis, the run-time size `shape` multiplies (\"\" for none): [\"N\",\"\",\"\"] with [1,1,768] is [N,1,768]")]) { context in
                let input = try context.type(0)
                let target = try context.attributes.ints("shape")
                let symbols = try context.attributes.optionalStrings("symbols") ?? Array(repeating: "", count: target.count)
                guard symbols.count == target.count else {
                    throw context.error("symbols has \(symbols.count) entries for the \(target.count) axes of shape \(AttributeValue.ints(target))")
                }
                let dims = zip(target, symbols).map { extent, symbol in symbol.isEmpty ? Dim.known(extent) : Dim.scaled(symbol, by: extent) }
                guard target.allSatisfy({ $0 >= 0 }), let shape = DimMath.broadcast(input.shape, Shape(dims)) else {
                    throw context.error("cannot broadcast \(context.quote(0, input)) with shape \(Shape(dims))")
                }
                return [TensorType(input.dtype, shape)]
            },
            OpSchema(kind: .tile, category: .dataMovement, inputs: [.init("x")], attributes: [.init("repeats", default: nil, "one count per axis")]) { context in
                let input = try context.type(0)
                let repeats = try context.attributes.ints("repeats")
                guard repeats.count == input.shape.rank, repeats.allSatisfy({ $0 >= 0 }) else {
                    throw context.error("repeats \(AttributeValue.ints(repeats)) must be \(input.shape.rank) non-negative counts for \(context.quote(0, input))")
                }
                var shape = input.shape
                for (axis, count) in repeats.enumerated() where count != 1 {
                    guard let extent = input.shape[axis].value else {
                        throw context.error("cannot repeat symbolic dimension \(input.shape[axis]) of \(context.quote(0, input))")
                    }
                    let (product, overflow) = extent.multipliedReportingOverflow(by: count)
                    guard !overflow else { throw context.error("repeating axis \(axis) of \(context.quote(0, input)) overflows") }
                    shape[axis] = .known(product)
                }
                return [TensorType(input.dtype, shape)]
            },
            OpSchema(kind: .depthToSpace, category: .dataMovement, inputs: [.init("x")], attributes: blockAttributes) { context in
                [try blockRearrangedType(context, toSpace: true)]
            },
            OpSchema(kind: .spaceToDepth, category: .dataMovement, inputs: [.init("x")], attributes: blockAttributes) { context in
                [try blockRearrangedType(context, toSpace: false)]
            },
        ]
    }

    /// The extents split's pieces take: `sizes` when given (they must add up to the axis),
    /// otherwise equal pieces.
    static func splitSizes(_ context: OpSchema.Context, extent: Int, pieces: Int) throws -> [Int] {
        if let sizes = try context.attributes.optionalInts("sizes") {
            let problem = context.error("sizes \(AttributeValue.ints(sizes)) must be \(pieces) non-negative extents adding up to \(extent)")
            var total = 0
            for size in sizes {
                let (sum, overflow) = total.addingReportingOverflow(size)
                guard size >= 0, !overflow else { throw problem }
                total = sum
            }
            guard sizes.count == pieces, total == extent else { throw problem }
            return sizes
        }
        guard pieces > 0, extent % pieces == 0 else {
            throw context.error("cannot split extent \(extent) into \(pieces) equal pieces")
        }
        return Array(repeating: extent / pieces, count: pieces)
    }

    private static let blockAttributes: [OpSchema.AttributeSpec] = [
        OpSchema.layoutAttribute,
        .init("block_size", default: nil, "side of the square block moved between depth and space"),
        .init("mode", default: .string("DCR"), "depth_to_space channel order: \"DCR\" (depth, column, row) or \"CRD\""),
    ]

    /// depth_to_space: [N,H,W,C] -> [N,H·b,W·b,C/b²]; space_to_depth the reverse (NHWC shown).
    private static func blockRearrangedType(_ context: OpSchema.Context, toSpace: Bool) throws -> TensorType {
        let layout = try context.layout()
        let input = try context.requireImage(0, layout: layout)
        let block = try context.attributes.int("block_size")
        _ = try context.attributes.choice("mode", ["DCR", "CRD"])
        guard block >= 1, block <= 1 << 12 else { throw context.error("block_size \(block) must be a positive count") }
        guard let channels = input.shape[layout.channelAxis].value, let height = input.shape[layout.heightAxis].value,
              let width = input.shape[layout.widthAxis].value else {
            throw context.error("needs known channels, height and width but \(context.quote(0, input)) is symbolic there")
        }
        var shape = input.shape
        let area = block * block
        let limit = Int(Int32.max)
        if toSpace {
            guard channels % area == 0, height <= limit, width <= limit else {
                throw context.error("\(channels) channels of \(context.quote(0, input)) do not divide into \(block)×\(block) blocks")
            }
            shape[layout.channelAxis] = .known(channels / area)
            shape[layout.heightAxis] = .known(height * block)
            shape[layout.widthAxis] = .known(width * block)
        } else {
            guard height % block == 0, width % block == 0, channels <= limit else {
                throw context.error("height and width of \(context.quote(0, input)) do not divide into \(block)×\(block) blocks")
            }
            shape[layout.channelAxis] = .known(channels * area)
            shape[layout.heightAxis] = .known(height / block)
            shape[layout.widthAxis] = .known(width / block)
        }
        return TensorType(input.dtype, shape)
    }
}
