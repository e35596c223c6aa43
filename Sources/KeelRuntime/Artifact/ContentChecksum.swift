/// A checksum over every weight and prepared-filter byte of a .keelc file, stored in its header
/// (which has a checksum of its own). Loading does not read it, since that would touch every
/// weight page at start-up; `--verify` does, so a file whose weights were damaged or overwritten
/// (with NaN, say) is refused instead of run.
enum ContentChecksum {
    /// Four interleaved FNV-style lanes over 8-byte words (the multiplies do not wait on each
    /// other), folded together with the tail bytes; each blob's length is mixed in too.
    static func of(_ blobs: [UnsafeRawBufferPointer]) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01B3
        var lanes: (UInt64, UInt64, UInt64, UInt64) = (0xcbf2_9ce4_8422_2325, 0x84222325cbf29ce4, 0x9ce484222325cbf2, 0x2325cbf29ce48422)
        for blob in blobs {
            lanes.0 = (lanes.0 ^ UInt64(blob.count)) &* prime
            var offset = 0
            while offset + 32 <= blob.count {
                lanes.0 = (lanes.0 ^ blob.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* prime
                lanes.1 = (lanes.1 ^ blob.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)) &* prime
                lanes.2 = (lanes.2 ^ blob.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)) &* prime
                lanes.3 = (lanes.3 ^ blob.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)) &* prime
                offset += 32
            }
            while offset < blob.count {
                lanes.1 = (lanes.1 ^ UInt64(blob[offset])) &* prime
                offset += 1
            }
        }
        return ((lanes.0 &* 31 ^ lanes.1) &* 31 ^ lanes.2) &* 31 ^ lanes.3
    }

    static func text(_ blobs: [UnsafeRawBufferPointer]) -> String { String(of(blobs), radix: 16) }

    /// Compares the stored checksum with the bytes the header's records point at (their bounds
    /// already checked when the graph and filters were rebuilt).
    static func verify(_ description: ArtifactGraph, weights: UnsafeRawBufferPointer,
                       prepared: UnsafeRawBufferPointer) throws {
        guard let stored = description.contentChecksum else {
            throw ArtifactError.corrupt("it stores no weight checksum (written by an older keel); compile it again to verify it")
        }
        let constants = description.constants.filter { $0.preparedOnly != true }.map {
            UnsafeRawBufferPointer(rebasing: weights[$0.offset..<($0.offset + $0.byteCount)])
        }
        let filters = (description.prepared ?? []).map {
            UnsafeRawBufferPointer(rebasing: prepared[$0.offset..<($0.offset + $0.byteCount)])
        }
        guard text(constants + filters) == stored else {
            throw ArtifactError.corrupt("its weights fail their checksum: the file was changed or damaged after it was written")
        }
    }
}
