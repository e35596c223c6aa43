#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KeelIR

/// Weights stored beside the model (`data_location = EXTERNAL`). Each file is mapped once per
/// load and shared by every tensor that lives in it; tensors view their slice of the mapping.
final class ExternalDataFiles {
    let modelPath: String
    let folder: String
    let confinement: PathConfinement
    private var mapped: [String: MappedFile] = [:]

    init(modelPath: String, confinement: PathConfinement) {
        self.modelPath = modelPath
        self.folder = PathConfinement.folder(of: modelPath)
        self.confinement = confinement
    }

    /// The bytes of one tensor, checked against the `location`/`offset`/`length` entries.
    func storage(tensor name: String, entries: [String: String], byteCount: Int, alignment: Int) throws -> TensorStorage {
        func fail(_ reason: String) -> ONNXError { .externalData(path: modelPath, name: name, reason: reason) }
        guard let location = entries["location"], !location.isEmpty else { throw fail("no 'location' entry") }
        let offset = try number(entries["offset"], named: "offset", default: 0, fail: fail)
        let length = try number(entries["length"], named: "length", default: byteCount, fail: fail)
        let file = try mappedFile(location, fail: fail)
        let size = file.bytes.count
        guard offset <= size, length <= size - offset else {
            throw fail("bytes \(formatCount(offset))..<\(formatCount(offset &+ length)) lie beyond the end of '\(location)' (\(formatCount(size)) bytes)")
        }
        guard length == byteCount else {
            throw fail("length is \(formatCount(length)) bytes but the tensor needs \(formatCount(byteCount))")
        }
        let start = file.bytes.baseAddress.map { UnsafeRawPointer($0) + offset }
        return viewOrCopy(start, byteCount: byteCount, alignment: alignment, owner: file)
    }

    private func number(_ text: String?, named key: String, default value: Int,
                        fail: (String) -> ONNXError) throws -> Int {
        guard let text else { return value }
        guard let number = Int(text), number >= 0 else { throw fail("invalid \(key) '\(text)'") }
        return number
    }

    private func mappedFile(_ location: String, fail: (String) -> ONNXError) throws -> MappedFile {
        // Symbolic links are followed before the folder check; FIFOs and devices are refused.
        let resolved: String
        do throws(PathError) {
            resolved = try confinement.resolve(location, inside: folder)
        } catch {
            throw fail(error.kind == .missing ? "missing file '\(location)' (looked in \(folder))" : "location \(error)")
        }
        if let file = mapped[resolved] { return file }
        let file: MappedFile
        do {
            file = try MappedFile(path: resolved)
        } catch let error as FileError {
            throw fail("cannot read '\(location)': \(error.reason)")
        } catch let error as ONNXError {
            if case .unreadable(_, let reason) = error { throw fail("cannot read '\(location)': \(reason)") }
            throw error
        }
        mapped[resolved] = file
        return file
    }
}
