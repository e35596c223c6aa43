/// The buffers kernels stream through start on a 64-byte cache line, whatever malloc's own
/// alignment, and the zeroed arena reads as zeros over its whole requested length.
import Foundation
import KeelKernels
import XCTest

final class CacheLineMemoryTests: XCTestCase {
    func testFloatsStartOnACacheLine() {
        // Small blocks come from malloc's arenas, large ones from mmap (page start + header).
        for count in [0, 1, 3, 17, 1000, 1 << 20] {
            let buffer = CacheLineMemory.allocateFloats(count)
            defer { buffer.deallocate() }
            XCTAssertEqual(buffer.count, count)
            XCTAssertEqual(Int(bitPattern: buffer.baseAddress) % 64, 0, "\(count) floats")
            for index in buffer.indices { buffer[index] = Float(index) } // every element writable
        }
    }

    func testZeroedFloatsAreAlignedAndZero() throws {
        for count in [1, 5, 4096, 3 << 18] {
            let (floats, allocation) = try XCTUnwrap(CacheLineMemory.allocateZeroedFloats(count))
            defer { free(allocation) }
            XCTAssertEqual(Int(bitPattern: floats) % 64, 0, "\(count) floats")
            XCTAssertGreaterThanOrEqual(UnsafeMutableRawPointer(floats) - allocation, 0)
            XCTAssertLessThan(UnsafeMutableRawPointer(floats) - allocation, 64)
            XCTAssertTrue(UnsafeBufferPointer(start: floats, count: count).allSatisfy { $0 == 0 })
            floats[count - 1] = 1 // the last requested element lies inside the allocation
        }
    }
}
