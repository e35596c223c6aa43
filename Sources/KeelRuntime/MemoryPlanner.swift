/// Liveness-based placement of intermediate tensors in one arena.
///
/// Greedy by size (largest first, each at the lowest offset that does not overlap a placed
/// buffer whose lifetime intersects): simple, and within a few percent of optimal on chain-like
/// CNNs, where the peak is two adjacent activations.
public struct BufferRequest: Hashable, Sendable {
    public var size: Int
    /// The step that writes the buffer and the last step that reads it (inclusive).
    public var firstStep: Int
    public var lastStep: Int

    public init(size: Int, firstStep: Int, lastStep: Int) {
        self.size = size
        self.firstStep = firstStep
        self.lastStep = lastStep
    }

    func overlapsInTime(_ other: BufferRequest) -> Bool {
        firstStep <= other.lastStep && other.firstStep <= lastStep
    }
}

public struct MemoryPlan: Hashable, Sendable {
    /// Offset of each request in the arena, in elements, aligned.
    public var offsets: [Int]
    /// Elements the arena needs.
    public var arenaSize: Int
    /// What allocating every buffer separately would take: the figure the plan is judged against.
    public var naiveSize: Int
}

public enum MemoryPlanner {
    /// Offsets are multiples of `alignment` elements (16 floats = 64 bytes, one cache line).
    public static func plan(_ requests: [BufferRequest], alignment: Int = 16) -> MemoryPlan {
        func aligned(_ value: Int) -> Int { (value + alignment - 1) / alignment * alignment }
        let order = requests.indices.sorted {
            (requests[$0].size, requests[$1].firstStep) > (requests[$1].size, requests[$0].firstStep)
        }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed: [Int] = []
        var arenaSize = 0
        for index in order {
            let request = requests[index]
            let conflicts = placed
                .filter { requests[$0].overlapsInTime(request) }
                .map { (start: offsets[$0], end: offsets[$0] + aligned(requests[$0].size)) }
                .sorted { $0.start < $1.start }
            var candidate = 0
            for conflict in conflicts {
                if candidate + aligned(request.size) <= conflict.start { break }
                candidate = max(candidate, conflict.end)
            }
            offsets[index] = candidate
            placed.append(index)
            arenaSize = max(arenaSize, candidate + aligned(request.size))
        }
        let naiveSize = requests.reduce(0) { $0 + $1.size }
        return MemoryPlan(offsets: offsets, arenaSize: arenaSize, naiveSize: naiveSize)
    }
}
