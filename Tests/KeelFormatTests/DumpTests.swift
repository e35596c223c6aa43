import XCTest
import KeelIR
@testable import KeelFormat

final class DumpTests: XCTestCase {
    func testDump() throws {
        for name in ["vgg16.keel", "vgg16_top.keel", "vgg16_resnet_head.keel", "vgg16_vit_head.keel", "vgg16_two_heads.keel"] {
            do {
                let graph = try loadKeelGraph(path: TestPaths.graph(name))
                print(graph.irText)
            } catch {
                print("FAILED \(name): \(error)")
            }
        }
    }
}
