import KeelIR

/// A name written somewhere, kept with its location for "undefined name" errors.
struct ValueReference: Hashable, Sendable {
    var name: String
    var location: SourceLocation
}

/// A block call that produced a layer, so errors can say how a block body was reached.
struct CallSite: Hashable, Sendable {
    var block: String
    var location: SourceLocation
}

/// One layer after includes, blocks and loops have been expanded: every name is resolved to
/// text and every input is explicit. Attribute values are still unchecked source expressions.
struct LayerInstance: Hashable, Sendable {
    var name: String
    /// Where the layer's name is written (inside a block body for block layers).
    var location: SourceLocation
    var type: String
    var typeLocation: SourceLocation
    var inputs: [ValueReference]
    /// True when the layer reads the previous layer because it names no input.
    var implicitInput: Bool
    /// Labelled attributes and positional literals (`dense(256)`), in source order.
    var arguments: [Argument]
    var frozen: Bool
    /// Block calls that led here, innermost first.
    var callSites: [CallSite]
}

struct InputInstance: Hashable, Sendable {
    var name: String
    var type: TensorType
    var layout: Layout?
    var preprocess: String?
    var location: SourceLocation
}

struct OutputInstance: Hashable, Sendable {
    var name: String
    var value: ValueReference
    var location: SourceLocation
    var labels: String?
}

/// A whole model as a flat list: what `GraphTranslator` turns into an IR graph.
struct FlatModel: Hashable, Sendable {
    var name: String
    var source: String
    var inputs: [InputInstance] = []
    var layers: [LayerInstance] = []
    var outputs: [OutputInstance] = []
}

extension Diagnostic {
    /// Adds "in block 'x' called here" notes so errors inside block bodies show the call chain.
    func noting(_ callSites: [CallSite]) -> Diagnostic {
        var result = self
        for site in callSites {
            result = result.adding(Note("in block '\(site.block)' called here", at: site.location))
        }
        return result
    }
}
