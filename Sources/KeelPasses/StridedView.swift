/// Which element of a contiguous buffer each element of a chain of views (reshape, transpose,
/// squeeze, gather of one index, slice with step 1) reads, computed for concrete extents. Each axis runs over one
/// or more strided atoms (most significant first): a reshape that merges axes which are not
/// adjacent in memory (a [T, N, C] buffer read as [T, 12·N, 64]) keeps both strides, and a later
/// reshape may split them apart again, so the exporters' head-splitting chains resolve to plain
/// strides where no copy is needed.
struct StridedView: Equatable {
    struct Atom: Equatable {
        var extent: Int
        var stride: Int
    }

    var offset = 0
    var axes: [[Atom]]

    init(contiguous extents: [Int]) {
        var stride = 1
        var axes: [[Atom]] = []
        for extent in extents.reversed() {
            axes.insert(extent == 1 ? [] : [Atom(extent: extent, stride: stride)], at: 0)
            stride *= extent
        }
        self.axes = axes
    }

    var extents: [Int] { axes.map { $0.reduce(1) { $0 * $1.extent } } }

    func transposed(_ permutation: [Int]) -> StridedView? {
        guard permutation.sorted() == Array(axes.indices) else { return nil }
        var result = self
        result.axes = permutation.map { axes[$0] }
        return result
    }

    /// The same elements in row-major order regrouped into `target` extents, splitting an atom
    /// where an axis boundary falls inside it; nil when the element counts differ or a boundary
    /// does not divide an atom.
    func reshaped(_ target: [Int]) -> StridedView? {
        var atoms = axes.flatMap { $0 }.filter { $0.extent != 1 }
        var result = self
        result.axes = []
        for extent in target {
            guard extent >= 1 else { return nil }
            var axis: [Atom] = []
            var covered = 1
            while covered < extent {
                guard !atoms.isEmpty, extent % covered == 0 else { return nil }
                let needed = extent / covered
                let atom = atoms.removeFirst()
                if atom.extent <= needed {
                    guard needed % atom.extent == 0 else { return nil }
                    axis.append(atom)
                    covered *= atom.extent
                } else {
                    guard atom.extent % needed == 0 else { return nil }
                    let rest = atom.extent / needed
                    axis.append(Atom(extent: needed, stride: atom.stride * rest))
                    atoms.insert(Atom(extent: rest, stride: atom.stride), at: 0)
                    covered = extent
                }
            }
            result.axes.append(axis)
        }
        return atoms.isEmpty ? result : nil
    }

    /// Index `index` of `axis`, which disappears.
    func selecting(_ index: Int, axis: Int) -> StridedView? {
        guard axes.indices.contains(axis), index >= 0, index < extents[axis] else { return nil }
        var result = self
        var remainder = index
        for atom in axes[axis].reversed() {
            result.offset += (remainder % atom.extent) * atom.stride
            remainder /= atom.extent
        }
        result.axes.remove(at: axis)
        return result
    }

    /// Indices start ..< start + length of `axis`, which must run over evenly spaced elements.
    func sliced(axis: Int, start: Int, length: Int) -> StridedView? {
        guard axes.indices.contains(axis), start >= 0, length >= 1, start + length <= extents[axis],
              let stride = strides?[axis] else { return nil }
        var result = self
        result.offset += start * stride
        result.axes[axis] = length == 1 ? [] : [Atom(extent: length, stride: stride)]
        return result
    }

    /// One stride per axis when every axis runs over evenly spaced elements (0 for extent 1).
    var strides: [Int]? {
        var result: [Int] = []
        for axis in axes {
            guard var merged = axis.last else { result.append(0); continue }
            for atom in axis.dropLast().reversed() {
                guard atom.stride == merged.extent * merged.stride else { return nil }
                merged.extent *= atom.extent
            }
            result.append(merged.stride)
        }
        return result
    }

    /// Whether the view reads the buffer from its start in row-major order.
    var isContiguous: Bool {
        guard offset == 0, let strides else { return false }
        var expected = 1
        for (extent, stride) in zip(extents, strides).reversed() where extent != 1 {
            guard stride == expected else { return false }
            expected *= extent
        }
        return true
    }
}
