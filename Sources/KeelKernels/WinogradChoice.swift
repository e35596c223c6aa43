/// Which Winograd tile a layer runs on, if any: the choice by saved multiplies, filter memory
/// and streaming cost that `Conv2D.defaultAlgorithm` makes for 3×3 stride-1 layers.

/// F(m×m, 3×3): an m×m output tile from an (m+2)×(m+2) input tile with (m+2)² multiplies per
/// channel pair instead of 9m². The large tile multiplies least (36 for 16 outputs, a quarter of
/// im2col's); the small one (16 for 4 outputs, 4/9) keeps a filter 16/9 the size of the 3×3 one
/// instead of 4×, costs more transform work per output, and wastes less on ragged edge tiles.
public enum WinogradTile: Sendable, Equatable, CaseIterable {
    /// F(2×2, 3×3).
    case small
    /// F(4×4, 3×3).
    case large

    /// m: output pixels along each side of a tile.
    public var outputSize: Int { self == .small ? 2 : 4 }
    /// m + 2: input pixels along each side of a tile.
    public var inputSize: Int { outputSize + 2 }
    /// (m + 2)²: transform points, one GEMM each.
    public var points: Int { inputSize * inputSize }
}

extension Winograd {
    /// The tile that should beat im2col on a layer Winograd supports, by cost, or nil for im2col.
    ///
    /// Whether a tile pays at all: per filter element im2col multiplies 9·pixels times and the
    /// tile points·tiles times (ragged edge tiles count whole); it pays once the multiplies it
    /// saves, 9·pixels − points·tiles, reach `minimumSavedMultiplies`. Measured per layer both
    /// ways for the large tile (batch 1 and 8): 14×14 layers at batch 1 (score 1188) ran 2–4×
    /// faster on Winograd with 256 or 512 channels and level with 128→32; 7×7 and 8×8 ones (297,
    /// 432) 1.5–3× slower; 7×7 at batch 8 (2376) 3× faster. The small tile measured alike:
    /// 14×14 at batch 1 (980) 1.5–2.2× faster, 8×8 448→384 (320) 1.3× slower, 7×7 512→512 (185)
    /// level. Both sides need enough channels for the transforms to cost less than the
    /// multiplies they save. Those measurements are older than the tile kernels AVX-512 runs
    /// now, which pay from a smaller saving (`simdMinimumSavedMultiplies`).
    ///
    /// The transformed filter stays resident in place of the 3×3 one, (points − 9)·inputs·outputs
    /// floats more: 28 MB for a 512→512 layer on the large tile, which on VGG16's three 14×14
    /// layers at batch 1 took peak RSS from 196 to 281 MB. A tile whose filter would grow by more
    /// than `filterGrowthBudget` needs `largeFilterSavedMultiplies` instead.
    ///
    /// Of the tiles that pay, the cheaper by `cost` wins: its filter streamed from memory on
    /// every run weighs on few tiles, so the small tile wins at 14×14 and below at batch 1. No
    /// tile whose filter would grow by more than `filterGrowthCap` is taken.
    static func tile(for geometry: Conv2DGeometry) -> WinogradTile? {
        guard geometry.inputChannels >= minimumChannels && geometry.outputChannels >= minimumChannels else { return nil }
        return WinogradTile.allCases
            .filter { filterGrowth(geometry, $0) <= filterGrowthCap }
            .filter { savedMultiplies(geometry, $0) >= requiredSavedMultiplies(geometry, $0) }
            .min { cost(geometry, $0) < cost(geometry, $1) }
    }

    /// Per filter element: the multiplies, points·tiles, plus the filter's points read from
    /// memory, each weighing `filterStreamTiles` tiles' multiplies.
    static func cost(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        tile.points * (tileCount(geometry, tile) + filterStreamTiles)
    }

    /// Fitted to per-layer minima of both tiles and im2col at batch 1 (VGG16, ResNet50,
    /// DenseNet121): with it the cost ranks the tiles as measured on 14×14 256→256 (small 1.25 ms,
    /// large 1.45; cost 1200 against 1512), 28×28 128→128 (1.15 against 1.0; 3552 against 2700)
    /// and 7×7 512→512 (2.4 against 3.6; 672 against 1080).
    static let filterStreamTiles = 26

    static let minimumChannels = 16
    /// Between the 432 of the fastest im2col layers measured and the 1188 of the slowest, on the
    /// kernels of the time; kept for the levels not measured again (no x86 SIMD level in use).
    static let unmeasuredMinimumSavedMultiplies = 720
    /// Between 297 and 320, remeasured with today's tile kernels (Zen 4, two threads, per-layer
    /// minima). AVX-512: 8×8 layers on the small tile (320) ran 1.6–1.75× faster than im2col
    /// (InceptionV3's 448→384 1.05 → 0.59 ms, CSPDarknet53's 512→512 1.53 → 0.95), 10×10 ones
    /// (500) 1.5× (ResNet50 at 160×160, 256→256: 0.62 → 0.41), 5×5 at batch 8 (648) 1.4×; 7×7
    /// ones on the large tile (297) level (DenseNet121's 128→32, GoogLeNet's 160→320). The AVX2
    /// bodies on the same cores alike: 8×8 1.26 → 0.63 ms (InceptionV3), 1.6 → 1.0 (CSPDarknet53),
    /// 10×10 0.73 → 0.43.
    static let simdMinimumSavedMultiplies = 310

    /// The saving a tile needs with the kernels in use.
    static var minimumSavedMultiplies: Int {
        CPUCapabilities.inUse.contains(.avx2) || CPUCapabilities.inUse.contains(.avx512)
            ? simdMinimumSavedMultiplies : unmeasuredMinimumSavedMultiplies
    }
    /// Bytes the Winograd filter may add over the 3×3 one before a layer needs the larger saving:
    /// ResNet50's and Inception's 256-channel 14×14 layers (7 MB on the large tile) stay under
    /// it, and so does every layer up to 768→768 on the small tile.
    static let filterGrowthBudget = 16 << 20
    /// What a layer over the budget must save: the 7×7 512→512 layers at batch 8 (2376) ran 3×
    /// faster on the large tile; VGG16's three 14×14 ones at batch 1 (1188) ran 2× faster too
    /// (10–14 ms against 21–25 ms each, one thread, loaded machine), but not worth 28 MB each: peak
    /// RSS 281 MB against ORT's 244, 208 MB on im2col. At batch 8 they take the large tile again,
    /// derived from the panels prepared for batch 1, which stay: VGG16's batch-8 peak went from
    /// 430 to 461 MB (ORT's: 628).
    static let largeFilterSavedMultiplies = 2000
    /// Growth no layer may take, whatever it saves: Wide-ResNet50-2's two 1024→1024 7×7 layers at
    /// batch 8 grow by 113 MB each on the large tile (the small one does not save enough), and
    /// took its peak RSS to 838 MB against ONNX Runtime's 725; on im2col they ran 40 ms each
    /// instead of 14, 8% of the model's time. 768→768 layers (64 MB) still take the large tile.
    static let filterGrowthCap = 64 << 20

    /// Bytes the tile's transformed filter holds over the 3×3 one.
    static func filterGrowth(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        (tile.points - 9) * geometry.inputChannels * geometry.outputChannels * MemoryLayout<Float>.size
    }

    /// Multiplies `tile` saves per filter element over im2col: 9·pixels − points·tiles.
    static func savedMultiplies(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        9 * geometry.batch * geometry.output.height * geometry.output.width - tile.points * tileCount(geometry, tile)
    }

    static func requiredSavedMultiplies(_ geometry: Conv2DGeometry, _ tile: WinogradTile) -> Int {
        filterGrowth(geometry, tile) > filterGrowthBudget ? largeFilterSavedMultiplies : minimumSavedMultiplies
    }
}
