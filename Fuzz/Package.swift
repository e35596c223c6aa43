// swift-tools-version:6.0
// libFuzzer harness for Keel's readers; built apart from the main package because everything in
// it is compiled with -sanitize=fuzzer,address. Run through `make fuzz` (see the Makefile).
import PackageDescription

let package = Package(
    name: "KeelFuzz",
    dependencies: [.package(name: "Keel", path: "..")],
    targets: [
        .executableTarget(name: "KeelFuzz", dependencies: [.product(name: "KeelFuzzTargets", package: "Keel")]),
    ],
    swiftLanguageModes: [.v5]
)
