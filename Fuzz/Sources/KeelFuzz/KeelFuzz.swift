import Foundation
import KeelFuzzTargets

/// Which reader this process fuzzes: KEEL_FUZZ_TARGET=keel|npy|onnx|keelc|image.
let target: FuzzTarget = {
    guard let name = ProcessInfo.processInfo.environment["KEEL_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("set KEEL_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    return target
}()

/// libFuzzer's entry point (libFuzzer supplies main; build with -parse-as-library).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
