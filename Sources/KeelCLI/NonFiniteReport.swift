import Keel
import KeelRuntime

/// A NaN or infinity in an output is never passed off as a clean result: a note says which
/// output holds how many and which node produced the first one; with `--check-finite` it is an
/// error instead, before any output is written.
func reportNonFinite(_ outputs: [String: Tensor], model: CompiledModel, inputs: [String: Tensor], failing: Bool) throws {
    let counts = model.outputNames.compactMap { name in
        outputs[name].map { (name, NonFiniteCount($0.values)) }
    }.filter { !$0.1.isZero }
    guard !counts.isEmpty else { return }
    let origin = try model.firstNonFinite(inputs).map { "; \($0)" } ?? ""
    let text = counts.map { "output '\($0.0)' holds \($0.1)" }.joined(separator: "; ") + origin
    if failing { throw NonFiniteOutputError(text: text) }
    note(text)
}

struct NonFiniteOutputError: Error, CustomStringConvertible {
    var text: String
    var description: String { "\(text) (--check-finite)" }
}
