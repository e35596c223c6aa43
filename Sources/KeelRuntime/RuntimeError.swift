import KeelIR

/// Errors raised while binding inputs, weights or files to a compiled model. Each prints as one line.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    case invalidTensor(String)
    case inputShape(input: String, expected: Shape, given: [Int])
    case inputRank(input: String, expected: Shape, given: [Int])
    case missingInput(String, available: [String])
    case unknownInput(String, available: [String])
    case unboundConstants([String])
    case unsupported(node: String, location: SourceLocation?, reason: String)
    case npy(path: String, reason: String)
    case file(path: String, reason: String)
    case invalidThreads(Int)

    public var description: String {
        switch self {
        case .invalidTensor(let reason):
            return "invalid tensor: \(reason)"
        case .inputShape(let input, let expected, let given):
            return "input '\(input)' expects shape \(expected) but was given \(Shape(known: given))"
        case .inputRank(let input, let expected, let given):
            return "input '\(input)' expects rank \(expected.rank) \(expected) but was given rank \(given.count) \(Shape(known: given))"
        case .missingInput(let name, let available):
            return "no value given for input '\(name)' (the model's inputs: \(available.joined(separator: ", ")))"
        case .unknownInput(let name, let available):
            return "the model has no input named '\(name)' (its inputs: \(available.joined(separator: ", ")))"
        case .unboundConstants(let names):
            let shown = names.prefix(8).joined(separator: ", ")
            let more = names.count > 8 ? " and \(names.count - 8) more" : ""
            return "\(names.count) parameter(s) have no weights: \(shown)\(more) (pass --weights FILE or --seed S)"
        case .unsupported(let node, let location, let reason):
            let prefix = location.map { "\($0): " } ?? ""
            return "\(prefix)cannot run '\(node)': \(reason)"
        case .npy(let path, let reason):
            return "\(path): not a usable .npy file: \(reason)"
        case .file(let path, let reason):
            return "\(path): \(reason)"
        case .invalidThreads(let threads):
            return "cannot run on \(threads) threads: the thread count must be from 1 to \(ExecutionContext.maximumThreads)"
        }
    }
}
