import CONNX
#if canImport(Glibc)
import Glibc
#endif

/// The allocator protobuf-c unpacks a model with, also used for weights copied out of the file
/// mapping when misaligned (`MappedWeights`). protobuf-c copies every `raw_data` field it parses
/// into a block of its own; blocks of a megabyte or more are mapped with MAP_POPULATE, so the
/// kernel provides all their pages in one call instead of a fault every 4 KB, which made up most
/// of the time spent copying VGG16's weights. Smaller blocks come from malloc. Every block is preceded by a
/// 16-byte header (its size and kind) so `free` knows how to give it back.
enum ParseAllocator {
    static let mappedMinimum = 1 << 20
    /// Mapped blocks start their data 64 bytes in (cache-line aligned); the header is just before.
    static let mappedOffset = 64
    static let headerSize = 16

    nonisolated(unsafe) static let shared: UnsafeMutablePointer<ProtobufCAllocator> = {
        let allocator = UnsafeMutablePointer<ProtobufCAllocator>.allocate(capacity: 1)
        allocator.initialize(to: ProtobufCAllocator(alloc: { _, size in ParseAllocator.allocate(size) },
                                                    free: { _, pointer in ParseAllocator.release(pointer) },
                                                    allocator_data: nil))
        return allocator
    }()

    static func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        guard size >= 0, size <= Int.max - 2 * mappedOffset else { return nil }
        #if os(Linux)
        if size >= mappedMinimum {
            let length = size + mappedOffset
            if let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
               base != MAP_FAILED {
                return record(base + mappedOffset, size: size, mapped: true)
            }
        }
        #endif
        guard let base = malloc(size + headerSize) else { return nil }
        return record(base + headerSize, size: size, mapped: false)
    }

    static func release(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let header = pointer - headerSize
        let size = header.load(as: Int.self)
        if header.load(fromByteOffset: 8, as: Int.self) != 0 {
            #if os(Linux)
            munmap(pointer - mappedOffset, size + mappedOffset)
            #endif
        } else {
            free(header)
        }
    }

    private static func record(_ data: UnsafeMutableRawPointer, size: Int, mapped: Bool) -> UnsafeMutableRawPointer {
        let header = data - headerSize
        header.storeBytes(of: size, as: Int.self)
        header.storeBytes(of: mapped ? 1 : 0, toByteOffset: 8, as: Int.self)
        return data
    }
}
