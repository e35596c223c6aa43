import XCTest
@testable import KeelONNX

/// The allocator protobuf-c unpacks models with: small blocks from malloc, large ones mapped;
/// both hold what is written and are given back by the same call.
final class ParseAllocatorTests: XCTestCase {
    func testSmallAndLargeBlocksHoldTheirBytesAndAreAligned() throws {
        for size in [0, 1, 100, ParseAllocator.mappedMinimum - 1, ParseAllocator.mappedMinimum, 3 * ParseAllocator.mappedMinimum + 5] {
            let block = try XCTUnwrap(ParseAllocator.allocate(size), "size \(size)")
            XCTAssertEqual(Int(bitPattern: block) % 16, 0, "size \(size)")
            let bytes = block.bindMemory(to: UInt8.self, capacity: size)
            for index in stride(from: 0, to: size, by: 4093) { bytes[index] = UInt8(truncatingIfNeeded: index) }
            if size > 0 { bytes[size - 1] = 0xA5 }
            for index in stride(from: 0, to: size - 1, by: 4093) { XCTAssertEqual(bytes[index], UInt8(truncatingIfNeeded: index)) }
            if size > 0 { XCTAssertEqual(bytes[size - 1], 0xA5) }
            ParseAllocator.release(block)
        }
        ParseAllocator.release(nil)
    }
}
