import Foundation
import KeelIR
import KeelKernels

/// Every frozen weight in the forms its kernels read, keyed by (weight, form): filled once by
/// the prepare phase (`WeightPreparation`) before any plan is built, or seeded from a compiled
/// model file, and shared by every plan.
///
/// A plan only reads forms. The one exception is a model whose batch is symbolic: a larger
/// batch can cross the Winograd threshold (`ConvolutionChoice`), and its plan then derives the
/// Winograd form from the packed one, once, through the same preparer.
///
/// It also holds the original values of filters that only conv2d reads, and is their only
/// holder: each original is dropped as soon as a prepared form of it exists and nothing else
/// will read it, so a model never holds a filter's values and all of its forms at once.
final class PreparedWeights: @unchecked Sendable {
    struct Key: Hashable {
        var source: String
        var form: PreparedForm
    }

    private var entries: [Key: any PreparedPayload] = [:]
    private var originals: [String: TensorData] = [:]
    /// Filters a compiled model file holds in the bf16 form alone: their layers can only run bf16.
    private(set) var bf16Only: Set<String> = []
    private let lock = NSLock()

    /// The `P` form of `source`, prepared now if it is not held yet. `original` gives the values
    /// of a weight the graph keeps (dense kernels, batch norm vectors); conv filters' originals are
    /// held here.
    func payload<P: PreparedPayload>(_ type: P.Type, for source: WeightSource, original: TensorData? = nil,
                                     context: KernelContext) throws -> P {
        lock.lock()
        defer { lock.unlock() }
        let key = Key(source: source.name, form: P.form)
        if let existing = entries[key] as? P { return existing }
        let made = try P.prepare(source, from: held(source.name, original: original), context: context)
        entries[key] = made
        return made
    }

    /// Prepares the `form` of `source` unless it is held already (the prepare phase's call).
    func prepare(_ form: PreparedForm, for source: WeightSource, original: TensorData? = nil, context: KernelContext) throws {
        _ = try payload(form.payloadType, for: source, original: original, context: context) as any PreparedPayload
    }

    private func held(_ name: String, original: TensorData?) -> HeldWeights {
        var forms: [PreparedForm: any PreparedPayload] = [:]
        for form in PreparedForm.allCases { forms[form] = entries[Key(source: name, form: form)] }
        return HeldWeights(name: name, original: originals[name] ?? original, forms: forms)
    }

    /// Whether the `form` of `name` is held.
    func contains(_ form: PreparedForm, of name: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return entries[Key(source: name, form: form)] != nil
    }

    /// Takes the forms a compiled model file stores.
    func seed(_ filters: [PreparedFilter]) {
        lock.lock()
        defer { lock.unlock() }
        for filter in filters { entries[Key(source: filter.constant, form: filter.kind)] = filter.payload }
        let forms = Dictionary(grouping: filters, by: \.constant).mapValues { Set($0.map(\.kind)) }
        bf16Only = Set(forms.filter { $0.value == [.bf16] && originals[$0.key] == nil }.keys)
    }

    /// Hands over the values of a filter that only conv2d reads.
    func holdOriginal(_ name: String, _ data: TensorData) {
        lock.lock()
        defer { lock.unlock() }
        originals[name] = data
    }

    /// A filter's original values, until `releaseOriginal` drops them.
    func original(_ name: String) -> TensorData? {
        lock.lock()
        defer { lock.unlock() }
        return originals[name]
    }

    /// Drops a filter's original values if some prepared form of them exists (a larger batch
    /// derives whatever else it needs from that form); otherwise keeps them.
    func releaseOriginal(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        guard originals[name] != nil,
              PreparedForm.allCases.contains(where: { entries[Key(source: name, form: $0)] != nil })
        else { return }
        originals[name] = nil
    }

    /// The Winograd algorithm a filter can only run in: held in one tile's form (or the line
    /// form) alone, with neither its original nor a form another algorithm's could be derived from
    /// (a symbolic model prepared for one batch, or a file compiled so); nil otherwise.
    func onlyWinogradAlgorithm(of name: String) -> Conv2DAlgorithm? {
        lock.lock()
        defer { lock.unlock() }
        guard originals[name] == nil else { return nil }
        let held = Set(PreparedForm.allCases.filter { entries[Key(source: name, form: $0)] != nil })
        if held == [.winograd2x2] { return .winograd(.small) }
        if held == [.winograd] { return .winograd(.large) }
        if held == [.lineWinograd] || held == [.squareWinograd] { return .lineWinograd }
        return nil
    }

    /// Whether a filter can only run bf16: a compiled file holds it so, or it is held in the bf16
    /// form alone with no original (a symbolic model prepared at batch 1, where bf16 was the
    /// faster choice, keeps it at batch 8 rather than hold the filter twice).
    func heldOnlyInBF16(_ name: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if bf16Only.contains(name) { return true }
        return originals[name] == nil && PreparedForm.allCases.filter { entries[Key(source: name, form: $0)] != nil } == [.bf16]
    }

    /// Names of the filters whose originals are still held.
    var heldOriginals: [String] {
        lock.lock()
        defer { lock.unlock() }
        return Array(originals.keys)
    }

    /// Every form a .keelc stores, ordered by key so files come out the same each time. Panels
    /// are given as the `packed` form they are rebuilt from, unless that is held too.
    var filters: [PreparedFilter] {
        lock.lock()
        defer { lock.unlock() }
        let stored = entries.filter { $0.key.form.isStored }.map { PreparedFilter(constant: $0.key.source, payload: $0.value) }
        let unpacked = entries.compactMap { key, value -> PreparedFilter? in
            guard key.form == .panels, entries[Key(source: key.source, form: .packed)] == nil,
                  let panels = value as? PanelConv2DWeights else { return nil }
            return PreparedFilter(constant: key.source, payload: panels.rowMajor())
        }
        return (stored + unpacked).sorted { $0.key < $1.key }
    }
}
