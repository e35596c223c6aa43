import Foundation

/// The repository's root, for tests that read graphs/ and samples/.
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
