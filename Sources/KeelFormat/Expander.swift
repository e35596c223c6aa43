import KeelIR

/// Flattens a root file and everything it includes into a `FlatModel`: splices included files,
/// expands block calls and `repeat` loops, interpolates names and makes sequential inputs explicit.
struct Expander {
    /// Reads a file's text; the CLI reads from disk, tests may serve sources from memory.
    typealias ReadFile = (String) throws -> String

    private struct Scope {
        var bindings: [String: Expression] = [:]
        var frozen = false
        var callSites: [CallSite] = []
        var file: String
        var isRoot: Bool
    }

    /// One statement list being walked: a file's, a block's or a loop's body. The walk keeps
    /// these on its own stack, so deep include chains and block calls cannot overflow the
    /// thread's stack.
    private struct Frame {
        var statements: [Statement]
        var position = 0
        var scope: Scope
        /// A loop's variable and the iterations still to run after the current one.
        var loop: (variable: String, next: Int, last: Int, location: SourceLocation)?
        /// Leaving this frame leaves an included file.
        var endsInclude = false
    }

    /// Preprocessing presets the runtime implements.
    static let preprocessPresets = ["keras_vgg16", "torch"]
    /// Loops multiply; this bound keeps a typo'd range from exhausting memory.
    static let maximumLayers = 100_000
    /// Iterations one `repeat` may run.
    static let maximumLoopIterations = 10_000
    /// Layers, block calls and loop iterations the whole expansion may take: loops nest, and
    /// empty ones make no layers, so without a total budget `repeat` in `repeat` never ends.
    static let maximumSteps = 1_000_000
    /// Files an include chain may nest.
    static let maximumIncludeDepth = 1_000

    private let readFile: ReadFile
    private var model: FlatModel
    private var modelName: String?
    private var blocks: [String: BlockDefinition] = [:]
    /// Files on the current include chain (cycle detection) and every file seen (include once).
    private var includeStack: [String] = []
    private var includedFiles: Set<String> = []
    /// The value a layer without explicit inputs reads.
    private var previous: String?
    private var steps = 0

    private init(root: String, readFile: @escaping ReadFile) {
        self.readFile = readFile
        self.model = FlatModel(name: "", source: root)
    }

    static func expand(_ root: SourceFile, readFile: @escaping ReadFile) throws -> FlatModel {
        var expander = Expander(root: root.path, readFile: readFile)
        let key = normalizedPath(root.path)
        expander.includeStack = [key]
        expander.includedFiles = [key]
        try expander.run(expander.enter(root, scope: Scope(file: root.path, isRoot: true)))
        guard let name = expander.modelName else {
            throw Diagnostic("missing 'model NAME' header", at: SourceLocation(file: root.path, line: 1, column: 1))
        }
        expander.model.name = name
        return expander.model
    }

    /// Registers a file's blocks and returns the frame that walks its statements.
    private mutating func enter(_ file: SourceFile, scope: Scope) throws -> Frame {
        // Blocks are visible throughout the file that defines them and everything after it.
        for case .block(let block) in file.statements {
            if let existing = blocks[block.name] {
                throw Diagnostic("duplicate block '\(block.name)'", at: block.location,
                                 notes: [Diagnostic.Note("first defined here", at: existing.location)])
            }
            blocks[block.name] = block
        }
        return Frame(statements: file.statements, scope: scope)
    }

    /// Counts one layer, block call or loop iteration against the expansion budget.
    private mutating func spendStep(at location: SourceLocation, scope: Scope) throws {
        steps += 1
        guard steps <= Expander.maximumSteps else {
            throw Diagnostic("the model takes more than \(formatCount(Expander.maximumSteps)) expansion steps (layers, block calls and loop iterations)",
                             at: location).noting(scope.callSites)
        }
    }

    /// Walks the statements depth first with an explicit stack of frames.
    private mutating func run(_ root: Frame) throws {
        var frames = [root]
        while let top = frames.indices.last {
            guard frames[top].position < frames[top].statements.count else {
                if let loop = frames[top].loop, loop.next <= loop.last {
                    try spendStep(at: loop.location, scope: frames[top].scope)
                    frames[top].scope.bindings[loop.variable] = Expression(kind: .integer(loop.next), location: loop.location)
                    frames[top].loop?.next += 1
                    frames[top].position = 0
                    continue
                }
                if frames[top].endsInclude { includeStack.removeLast() }
                frames.removeLast()
                continue
            }
            let statement = frames[top].statements[frames[top].position]
            frames[top].position += 1
            let scope = frames[top].scope
            switch statement {
            case .model(let name, let location):
                guard scope.isRoot else { continue }
                if modelName != nil { throw Diagnostic("a file has one 'model' header", at: location) }
                modelName = name
            case .include(let path, let frozen, let location):
                if let frame = try include(path, frozen: frozen, at: location, scope: scope) { frames.append(frame) }
            case .input(let declaration):
                try declareInput(declaration, scope: scope)
            case .block:
                continue
            case .invocation(let invocation):
                try spendStep(at: invocation.location, scope: scope)
                if let block = blocks[invocation.callee] {
                    frames.append(try call(block, invocation, scope: scope))
                } else {
                    try expandLayer(invocation, scope: scope)
                }
            case .repeatLoop(let loop):
                if let frame = try enter(loop, scope: scope) { frames.append(frame) }
            case .output(let declaration):
                guard scope.isRoot else { continue }
                let name = try resolveName(declaration.name, scope: scope, what: "output name")
                let value = try declaration.value.map { try resolveName($0, scope: scope, what: "output value") } ?? name
                model.outputs.append(OutputInstance(name: name.name, value: value, location: declaration.location,
                                                    labels: declaration.labels))
            }
        }
    }

    // MARK: Includes and inputs

    private mutating func include(_ path: String, frozen: Bool, at location: SourceLocation, scope: Scope) throws -> Frame? {
        guard scope.callSites.isEmpty else { throw Diagnostic("'include' is not allowed inside a block", at: location) }
        let resolved = Expander.resolve(path, relativeTo: scope.file)
        let key = Expander.normalizedPath(resolved)
        if let start = includeStack.firstIndex(of: key) {
            let chain = (includeStack[start...] + [key]).map { Expander.lastComponent($0) }.joined(separator: " -> ")
            throw Diagnostic("include cycle: \(chain)", at: location)
        }
        guard !includedFiles.contains(key) else { return nil }
        guard includeStack.count < Expander.maximumIncludeDepth else {
            throw Diagnostic("includes nest more than \(formatCount(Expander.maximumIncludeDepth)) files deep", at: location)
        }
        let text: String
        do {
            text = try readFile(resolved)
        } catch let error as PathError where error.kind != .missing {
            throw Diagnostic("included file '\(path)' \(error.reason)", at: location)
        } catch {
            throw Diagnostic("cannot read included file '\(path)' (looked for \(resolved))", at: location)
        }
        let file = try Parser.parse(source: text, path: resolved)
        includeStack.append(key)
        includedFiles.insert(key)
        var inner = Scope(file: resolved, isRoot: false)
        inner.frozen = scope.frozen || frozen
        var frame = try enter(file, scope: inner)
        frame.endsInclude = true
        return frame
    }

    private mutating func declareInput(_ declaration: InputDeclaration, scope: Scope) throws {
        guard scope.callSites.isEmpty else { throw Diagnostic("'input' is not allowed inside a block", at: declaration.location) }
        guard let dtype = DType(spelling: declaration.dtype) else {
            let spellings = DType.allCases.map(\.rawValue)
            throw Diagnostic("unknown element type '\(declaration.dtype)'\(suggestion(for: declaration.dtype, among: spellings))",
                             at: declaration.dtypeLocation)
        }
        let dims: [Dim] = declaration.dimensions.map { dimension, _ in
            switch dimension {
            case .extent(let extent): return .known(extent)
            case .symbol(let symbol): return .symbol(symbol)
            }
        }
        var layout: Layout? = dims.count == 4 ? .nhwc : nil
        if let (word, location) = declaration.layout {
            guard let chosen = Layout(rawValue: word) else {
                throw Diagnostic("unknown input option '\(word)'; expected a layout (nhwc or nchw) or 'preprocess:'\(suggestion(for: word, among: ["nhwc", "nchw"]))", at: location)
            }
            guard dims.count == 4 else {
                throw Diagnostic("layout '\(word)' applies to rank-4 image inputs; '\(declaration.name)' has rank \(dims.count)", at: location)
            }
            layout = chosen
        }
        if let (preset, location) = declaration.preprocess {
            guard Expander.preprocessPresets.contains(preset) else {
                throw Diagnostic("unknown preprocessing preset '\(preset)'; known presets: \(Expander.preprocessPresets.joined(separator: ", "))", at: location)
            }
            guard layout != nil else {
                throw Diagnostic("preprocessing applies to rank-4 image inputs; '\(declaration.name)' has rank \(dims.count)", at: location)
            }
        }
        model.inputs.append(InputInstance(name: declaration.name, type: TensorType(dtype, Shape(dims)), layout: layout,
                                          preprocess: declaration.preprocess?.0, location: declaration.location))
        previous = declaration.name
    }

    // MARK: Layers and blocks

    private mutating func expandLayer(_ invocation: Invocation, scope: Scope) throws {
        guard let resultName = invocation.resultName else {
            if LayerCatalog.names.contains(invocation.callee) {
                throw Diagnostic("layer '\(invocation.callee)(...)' needs a name: write 'NAME = \(invocation.callee)(...)'", at: invocation.calleeLocation)
            }
            let candidates = Array(blocks.keys) + LayerCatalog.names
            throw Diagnostic("unknown block '\(invocation.callee)'\(suggestion(for: invocation.callee, among: candidates))", at: invocation.calleeLocation)
        }
        let name = try resolveName(resultName, scope: scope, what: "layer name")
        var inputs: [ValueReference] = []
        var arguments: [Argument] = []
        for argument in invocation.arguments {
            let value = try substitute(argument.value, scope: scope)
            if argument.label == nil, case .word(let word) = value.kind {
                inputs.append(ValueReference(name: word, location: value.location))
            } else {
                arguments.append(Argument(label: argument.label, labelLocation: argument.labelLocation, value: value))
            }
        }
        let implicit = inputs.isEmpty
        if implicit {
            guard let previous else {
                throw Diagnostic("layer '\(name.name)' has no input: declare an 'input' first or name the layer's input", at: name.location)
                    .noting(scope.callSites)
            }
            inputs = [ValueReference(name: previous, location: name.location)]
        }
        guard model.layers.count < Expander.maximumLayers else {
            throw Diagnostic("the model expands to more than \(formatCount(Expander.maximumLayers)) layers", at: name.location)
                .noting(scope.callSites)
        }
        model.layers.append(LayerInstance(name: name.name, location: name.location, type: invocation.callee,
                                          typeLocation: invocation.calleeLocation, inputs: inputs, implicitInput: implicit,
                                          arguments: arguments, frozen: scope.frozen || invocation.frozen,
                                          callSites: scope.callSites))
        previous = name.name
    }

    /// The frame that walks a block's body with its parameters bound.
    private func call(_ block: BlockDefinition, _ invocation: Invocation, scope: Scope) throws -> Frame {
        guard invocation.resultName == nil else {
            throw Diagnostic("block call '\(invocation.callee)(...)' cannot be named; its layers are named inside the block", at: invocation.location)
        }
        if scope.callSites.contains(where: { $0.block == block.name }) {
            throw Diagnostic("block '\(block.name)' calls itself", at: invocation.calleeLocation).noting(scope.callSites)
        }
        let parameterNames = block.parameters.map(\.0)
        var bindings: [String: Expression] = [:]
        var positionalIndex = 0
        for argument in invocation.arguments {
            let value = try substitute(argument.value, scope: scope)
            let parameter: String
            if let label = argument.label {
                guard parameterNames.contains(label) else {
                    throw Diagnostic("block '\(block.name)' has no parameter '\(label)'\(suggestion(for: label, among: parameterNames))",
                                     at: argument.labelLocation ?? argument.value.location)
                }
                parameter = label
            } else {
                guard positionalIndex < parameterNames.count else {
                    throw Diagnostic("block '\(block.name)' takes \(parameterNames.count) argument(s) but is given more", at: argument.value.location)
                }
                parameter = parameterNames[positionalIndex]
                positionalIndex += 1
            }
            guard bindings[parameter] == nil else {
                throw Diagnostic("argument '\(parameter)' of block '\(block.name)' is given twice", at: argument.value.location)
            }
            bindings[parameter] = value
        }
        if let missing = parameterNames.first(where: { bindings[$0] == nil }) {
            throw Diagnostic("block '\(block.name)' needs argument '\(missing)'", at: invocation.calleeLocation)
                .adding(Diagnostic.Note("block '\(block.name)' is defined here", at: block.location))
        }
        var inner = Scope(file: block.location.file, isRoot: scope.isRoot)
        inner.bindings = bindings
        inner.frozen = scope.frozen || invocation.frozen
        inner.callSites = [CallSite(block: block.name, location: invocation.calleeLocation)] + scope.callSites
        return Frame(statements: block.body, scope: inner)
    }

    /// The frame that runs a loop's body once per index, or nil when the range is empty.
    private func enter(_ loop: RepeatLoop, scope: Scope) throws -> Frame? {
        let bounds = try [loop.from, loop.to].map { bound -> Int in
            let value = try substitute(bound, scope: scope)
            guard case .integer(let integer) = value.kind else {
                throw Diagnostic("loop bounds must be integers", at: value.location).noting(scope.callSites)
            }
            return integer
        }
        let (span, overflow) = bounds[1].subtractingReportingOverflow(bounds[0])
        guard !overflow, span < Expander.maximumLoopIterations else {
            let runs = overflow ? "more than \(formatCount(Expander.maximumLoopIterations))" : formatCount(span + 1)
            throw Diagnostic("loop runs \(runs) times; at most \(formatCount(Expander.maximumLoopIterations)) are allowed",
                             at: loop.location).noting(scope.callSites)
        }
        guard bounds[0] <= bounds[1] else { return nil }
        // The first iteration's index is bound here; the walk binds the rest as the body ends.
        var inner = scope
        inner.bindings[loop.variable] = Expression(kind: .integer(bounds[0]), location: loop.location)
        return Frame(statements: loop.body, scope: inner, loop: (loop.variable, bounds[0] + 1, bounds[1], loop.location))
    }

    // MARK: Names and substitution

    /// Replaces block parameters and loop variables by their values, and interpolates strings.
    private func substitute(_ expression: Expression, scope: Scope) throws -> Expression {
        switch expression.kind {
        case .word(let word):
            return scope.bindings[word] ?? expression
        case .string(let parts):
            return Expression(kind: .string([.text(try interpolate(parts, scope: scope))]), location: expression.location)
        case .list(let elements):
            return Expression(kind: .list(try elements.map { try substitute($0, scope: scope) }), location: expression.location)
        default:
            return expression
        }
    }

    private func interpolate(_ parts: [StringPart], scope: Scope) throws -> String {
        var text = ""
        for part in parts {
            switch part {
            case .text(let literal): text += literal
            case .variable(let name, let location):
                guard let value = scope.bindings[name] else {
                    let known = scope.bindings.keys.sorted()
                    let hint = known.isEmpty ? "; names interpolate only inside blocks and loops" : suggestion(for: name, among: known)
                    throw Diagnostic("unknown name '\(name)' in string\(hint)", at: location).noting(scope.callSites)
                }
                switch value.kind {
                case .word(let word): text += word
                case .integer(let integer): text += String(integer)
                case .string(let inner): text += try interpolate(inner, scope: scope)
                default: throw Diagnostic("'\(name)' cannot be interpolated into a name: it is not a word, string or integer", at: location)
                }
            }
        }
        return text
    }

    /// A layer or output name: a word (substituted when it is a parameter) or an interpolated string.
    private func resolveName(_ expression: Expression, scope: Scope, what: String) throws -> ValueReference {
        let value = try substitute(expression, scope: scope)
        let text: String
        switch value.kind {
        case .word(let word): text = word
        case .string(let parts): text = try interpolate(parts, scope: scope)
        default: throw Diagnostic("\(what) must be a name", at: expression.location).noting(scope.callSites)
        }
        guard Expander.isIdentifier(text) else {
            throw Diagnostic("\(what) '\(text)' is not a valid name (letters, digits and '_', not starting with a digit)",
                             at: expression.location).noting(scope.callSites)
        }
        return ValueReference(name: text, location: expression.location)
    }

    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.first, first.isLetter || first == "_" else { return false }
        return text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }

    // MARK: Paths

    /// `include` paths are relative to the including file's directory (absolute paths stay).
    static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    /// Removes `.` and `dir/..` so one file reached two ways is recognised as one.
    static func normalizedPath(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == "..", let last = components.last, last != ".." { components.removeLast(); continue }
            components.append(component)
        }
        return (path.hasPrefix("/") ? "/" : "") + components.joined(separator: "/")
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
