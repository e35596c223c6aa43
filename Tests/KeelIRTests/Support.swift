import KeelIR
import XCTest

/// f32 tensor type from dims written as literals: `f32("N", 7, 7, 512)`.
func f32(_ dims: Dim...) -> TensorType { TensorType(.float32, Shape(dims)) }

/// Runs one op's shape function on named, typed inputs (the way a graph would feed it).
func infer(_ op: OpKind, _ name: String, _ inputs: [(String, TensorType?)],
           _ attributes: [String: AttributeValue] = [:], constants: [String: TensorData] = [:]) throws -> TensorType {
    let node = Node(name: name, op: op, inputs: inputs.map(\.0), outputs: [name], attributes: Attributes(attributes))
    let types = try inferOutputTypes(of: node, inputTypes: inputs.map(\.1), constantValue: { constants[$0] })
    return types[0]
}

/// Asserts that `body` throws a Diagnostic whose message is exactly `message`.
func assertDiagnostic<T>(_ message: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
    do {
        let value = try body()
        XCTFail("expected error \"\(message)\" but got \(value)", file: file, line: line)
    } catch let diagnostic as Diagnostic {
        XCTAssertEqual(diagnostic.message, message, file: file, line: line)
    } catch {
        XCTFail("expected a Diagnostic but got \(error)", file: file, line: line)
    }
}
