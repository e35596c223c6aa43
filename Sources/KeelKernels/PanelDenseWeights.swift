/// A dense kernel cut once, at prepare time, into the panel GEMM's 32-column panels, from either
/// stored layout: the one form fp32 dense layers read (pointwise convolutions turned dense,
/// PyTorch Linear layers, classifier heads). An `[out, in]` kernel used to go through OpenBLAS,
/// which repacked all of it on every call and ran bias and activation as separate passes. The
/// panels are interleaved or split into halves as this CPU's GEMM reads them fastest; the GEMM
/// reads either, so compiled model files store them as they are and say which.
public struct PanelDenseWeights: Sendable, Equatable {
    public let inFeatures: Int
    public let outFeatures: Int
    let filter: PanelPackedFilter

    public init(kernel: UnsafeBufferPointer<Float>, inFeatures: Int, outFeatures: Int, layout: DenseWeightLayout,
                context: KernelContext = .singleThreaded) throws {
        try Self.checkExtents(inFeatures: inFeatures, outFeatures: outFeatures)
        try requireCapacity(kernel.count, inFeatures * outFeatures, Self.name, "kernel")
        guard let base = kernel.baseAddress else {
            throw KernelError.invalidArgument(kernel: Self.name, message: "no kernel values to pack")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        filter = try PanelPackedFilter(source: base, depth: inFeatures, columns: outFeatures, groups: 1, groupStride: 0,
                                       depthStride: layout == .inOut ? outFeatures : 1,
                                       outputStride: layout == .inOut ? 1 : inFeatures, operand: .right,
                                       context: context)
    }

    /// Panels stored earlier (by `withUnsafePackedValues`), used in place while `owner` lives.
    /// Throws unless the count matches the extents.
    public init(borrowing values: UnsafeBufferPointer<Float>, owner: AnyObject, inFeatures: Int,
                outFeatures: Int, splitHalves: Bool) throws {
        try Self.checkExtents(inFeatures: inFeatures, outFeatures: outFeatures)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        filter = try PanelPackedFilter(borrowing: values, owner: owner, depth: inFeatures, columns: outFeatures,
                                       splitHalves: splitHalves)
    }

    /// Whether each panel is stored as two 16-column halves.
    public var splitHalves: Bool { filter.splitHalves }

    /// The packed panels, valid inside `body`.
    public func withUnsafePackedValues<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try filter.storage.withUnsafeBufferPointer(body)
    }

    private static let name = "dense weights"

    private static func checkExtents(inFeatures: Int, outFeatures: Int) throws {
        try require(inFeatures > 0 && outFeatures > 0, name, "kernel \(inFeatures)x\(outFeatures)")
        try requireBLASExtents(inFeatures, outFeatures, kernel: name)
    }
}
