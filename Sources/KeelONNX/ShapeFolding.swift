import KeelIR

/// One element of an integer tensor the importer evaluates at import time: a number, a
/// symbolic dimension (the batch `N`, or a multiple `49·N`), or "dimension `axis` of value
/// `of`" when that dimension is not known at all.
enum SymbolicInt: Hashable {
    case constant(Int64)
    case symbol(String)
    case scaled(Int64, String)
    case dim(of: String, axis: Int)

    init(_ dim: Dim) {
        switch dim {
        case .known(let extent): self = .constant(Int64(extent))
        case .symbol(let name): self = .symbol(name)
        case .scaled(let coefficient, let name): self = .scaled(Int64(coefficient), name)
        }
    }

    var constant: Int64? {
        if case .constant(let value) = self { return value }
        return nil
    }

    /// The element as a dimension; nil for an unknown dimension or a number out of range.
    var dim: Dim? {
        switch self {
        case .constant(let value): return value >= Int64(Int.min) && value <= Int64(Int.max) ? .known(Int(value)) : nil
        case .symbol(let name): return .symbol(name)
        case .scaled(let coefficient, let name): return .scaled(name, by: Int(coefficient))
        case .dim: return nil
        }
    }

    /// Symbolic elements are run-time sizes: at least 1, since a plan never binds a batch of 0.
    var isPositiveSize: Bool {
        switch self {
        case .symbol, .scaled: return true
        case .constant, .dim: return false
        }
    }
}

/// A small integer tensor whose elements the partial evaluator knows, or the whole shape of a
/// value whose rank is unknown (resolved lazily by Gather/Slice).
enum KnownInts {
    case tensor(dtype: DType, shape: [Int], elements: [SymbolicInt])
    case shapeOf(String)

    /// Integer and bool constants small enough to be shape arithmetic; nil for anything else.
    init?(_ data: TensorData) {
        guard [.int64, .int32, .bool].contains(data.dtype), data.shape.count <= 1, data.elementCount <= 1024 else { return nil }
        self = .tensor(dtype: data.dtype, shape: data.shape, elements: data.int64s().map { .constant($0) })
    }

    var elements: [SymbolicInt]? {
        if case .tensor(_, _, let elements) = self { return elements }
        return nil
    }

    /// The elements when all are numbers.
    var constants: [Int64]? {
        guard let elements else { return nil }
        var result: [Int64] = []
        for element in elements {
            guard let value = element.constant else { return nil }
            result.append(value)
        }
        return result
    }

    /// A constant tensor holding the values, when none is symbolic.
    func constantData() -> TensorData? {
        guard case .tensor(let dtype, let shape, _) = self, let constants else { return nil }
        return TensorData(referenceValues: constants.map(Double.init), dtype: dtype, shape: shape)
    }
}

extension GraphImporter {
    /// The partial evaluator: evaluates the node at import time when its inputs are known
    /// integers or shapes (the Shape -> Gather/Slice -> Unsqueeze -> Concat -> Reshape chains
    /// exporters write for Flatten). Returns false when the node must become an IR node.
    /// Shape, Constant, ConstantOfShape and OneHot have no IR op and are always handled here.
    func foldShapeComputation(_ context: NodeContext) throws -> Bool {
        let node = context.node
        let output = node.outputs[0]
        func known(_ index: Int) -> KnownInts? {
            guard index < node.inputs.count, !node.inputs[index].isEmpty, let value = values[node.inputs[index]]?.known else { return nil }
            // Tables (rank 2: PyTorch's pads) are folded by the ops that rearrange them only;
            // every other op reads them as constants of their shape.
            if case .tensor(_, let shape, _) = value, shape.count > 1, !Self.tableOps.contains(node.opType) { return nil }
            return value
        }
        func define(_ result: KnownInts) {
            var shape: [Dim?]? = nil
            if case .tensor(_, let extents, _) = result { shape = extents.map { .known($0) } }
            values[output] = ImportedValue(irName: nil, known: result, shape: shape)
        }

        switch node.opType {
        case "Constant":
            let data = try context.constantAttributeValue()
            addConstant(name: uniqueName(output), data: data, onnxName: output)
            return true
        case "Shape":
            guard context.hasInput(0) else { throw context.fail("input 0 is missing") }
            define(try shapeOf(node.inputs[0], context: context))
            return true
        case "ConstantOfShape":
            guard let target = known(0)?.elements else {
                throw context.fail("its shape input depends on a run-time size, so the tensor cannot be built at import time")
            }
            // Run-time sizes (EdgeNeXt fills a mask of the batch's shape): the fill is the same at
            // every index, so it is a constant of extent 1 there, expanded when the plan binds them.
            let symbolic = target.map(\.isPositiveSize)
            let extents = zip(target, symbolic).map { element, isSymbolic in isSymbolic ? 1 : element.constant ?? -1 }
            guard extents.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }) else {
                throw context.fail("its shape \(target.map { $0.dim?.description ?? "?" }) has an extent that is negative or unknown at import time")
            }
            let shape = extents.map { Int($0) }
            let fill = try context.optionalTensorAttribute("value") ?? TensorData(floats: [0], shape: [1])
            guard fill.elementCount == 1, fill.storage.bytes.count == fill.dtype.byteSize else {
                throw context.fail("'value' must hold one element")
            }
            let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            guard count <= 1 << 24 else { throw context.fail("the filled tensor would have too many elements") }
            let element = Array(fill.storage.bytes.prefix(fill.dtype.byteSize))
            var bytes = [UInt8](repeating: 0, count: count * element.count)
            if element.contains(where: { $0 != 0 }) {
                for start in stride(from: 0, to: bytes.count, by: element.count) {
                    bytes.replaceSubrange(start..<(start + element.count), with: element)
                }
            }
            let data = TensorData(dtype: fill.dtype, shape: shape, storage: TensorStorage(copying: bytes))
            guard symbolic.contains(true) else {
                addConstant(name: uniqueName(output), data: data, onnxName: output)
                return true
            }
            let filled = context.addLiteral("filled", data)
            try emitExpand(context, filled, shape: shape.map { .known($0) }, to: target)
            return true
        case "OneHot":
            try foldOneHot(context, values: known(2), define: define)
            return true
        case "Identity":
            // PyTorch's exporter shares equal weights through Identity: the output is the same constant.
            if context.hasInput(0), let source = values[node.inputs[0]], let irName = source.irName, graph.constants[irName] != nil,
               !model.graph.outputs.contains(where: { $0.name == output }) {
                values[output] = source
                return true
            }
            guard let value = known(0) else { return false }
            define(value)
            return true
        case "Cast":
            guard let value = known(0), case .tensor(_, let shape, let elements) = value else { return false }
            let to = try context.int("to", default: 0)
            guard to == 6 || to == 7 else { return false }
            define(.tensor(dtype: to == 6 ? .int32 : .int64, shape: shape, elements: elements))
            return true
        case "Gather":
            guard let data = known(0), let indexValue = known(1), let indices = indexValue.constants,
                  case .tensor(_, let indexShape, _) = indexValue else { return false }
            guard try context.int("axis", default: 0) == 0 else { return false }
            var picked: [SymbolicInt] = []
            for index in indices {
                picked.append(try element(of: data, at: index, context: context))
            }
            define(.tensor(dtype: dtypeOf(data), shape: indexShape, elements: picked))
            return true
        case "Unsqueeze", "Squeeze":
            guard let value = known(0), case .tensor(let dtype, let shape, let elements) = value else { return false }
            let axes = opset >= 13 ? try context.constantInts(1) : try context.ints("axes")
            var result = shape
            if node.opType == "Unsqueeze" {
                guard let axes else { throw context.fail("needs 'axes'") }
                let rank = shape.count + axes.count
                for axis in axes.map({ $0 < 0 ? $0 + rank : $0 }).sorted() {
                    guard axis >= 0, axis <= result.count else { throw context.fail("axis out of range") }
                    result.insert(1, at: axis)
                }
            } else {
                let remove = Set((axes ?? shape.indices.filter { shape[$0] == 1 }).map { $0 < 0 ? $0 + shape.count : $0 })
                guard remove.allSatisfy({ shape.indices.contains($0) && shape[$0] == 1 }) else {
                    throw context.fail("squeezes an axis whose size is not 1")
                }
                result = shape.indices.filter { !remove.contains($0) }.map { shape[$0] }
            }
            guard result.count <= 1 else { return false }
            define(.tensor(dtype: dtype, shape: result, elements: elements))
            return true
        case "Concat":
            var elements: [SymbolicInt] = []
            var dtype = DType.int64
            for index in node.inputs.indices where !node.inputs[index].isEmpty {
                guard let value = known(index), case .tensor(let type, let shape, let part) = value, shape.count == 1 else { return false }
                elements += part
                dtype = type
            }
            define(.tensor(dtype: dtype, shape: [elements.count], elements: elements))
            return true
        case "Slice":
            guard let data = known(0) else { return false }
            let starts = opset >= 10 ? try context.constantInts(1) : try context.ints("starts")
            let ends = opset >= 10 ? try context.constantInts(2) : try context.ints("ends")
            let axes = opset >= 10 ? try context.constantInts(3) : try context.ints("axes")
            let steps = opset >= 10 ? try context.constantInts(4) : nil
            guard let starts, let ends, starts.count == ends.count, !starts.isEmpty else { return false }
            if case .tensor(let dtype, let shape, let elements) = data, shape.count > 1 {
                // PyTorch's exporter reverses the rows of a [axes, 2] table of pads.
                guard let sliced = sliceTable(shape: shape, elements: elements, starts: starts, ends: ends,
                                              axes: axes ?? Array(starts.indices), steps: steps ?? starts.map { _ in 1 }) else {
                    return false
                }
                define(.tensor(dtype: dtype, shape: sliced.shape, elements: sliced.elements))
                return true
            }
            guard starts.count == 1, (axes ?? [0]).allSatisfy({ $0 == 0 || $0 == -1 }) else { return false }
            let step = steps?.first ?? 1
            guard isValidStep(step) else { throw context.fail("invalid step \(step)") }
            let elements = try sliceElements(of: data, start: starts[0], end: ends[0], step: step, context: context)
            define(.tensor(dtype: dtypeOf(data), shape: [elements.count], elements: elements))
            return true
        case "Transpose":
            guard let value = known(0), case .tensor(let dtype, let shape, let elements) = value, shape.count == 2 else { return false }
            let perm = try context.ints("perm") ?? [1, 0]
            guard perm == [1, 0] || perm == [0, 1] else { return false }
            let (rows, columns) = (shape[0], shape[1])
            let result = perm == [0, 1] ? elements : (0..<(rows * columns)).map { elements[($0 % rows) * columns + $0 / rows] }
            define(.tensor(dtype: dtype, shape: perm.map { shape[$0] }, elements: result))
            return true
        case "Reshape" where (known(1)?.constants?.count ?? 0) == 2:
            // A shape vector viewed as a [n, 2] table (PyTorch's exporter writes pads this way).
            guard let value = known(0), case .tensor(let dtype, _, let elements) = value,
                  let target = known(1)?.constants, let shape = tableShape(target, count: elements.count) else { return false }
            define(.tensor(dtype: dtype, shape: shape, elements: elements))
            return true
        case "Reshape", "Expand":
            // A shape vector reshaped (to [-1]) or broadcast stays an integer computation.
            guard let value = known(0), case .tensor(let dtype, _, let elements) = value,
                  let target = known(1)?.constants, target.count <= 1 else { return false }
            if node.opType == "Reshape" {
                guard target.allSatisfy({ $0 == -1 || $0 == Int64(elements.count) }) else { return false }
                define(.tensor(dtype: dtype, shape: target.isEmpty ? [] : [elements.count], elements: elements))
            } else {
                guard let extent = target.first, elements.count == 1 || Int64(elements.count) == extent || extent == 1,
                      extent >= 1, extent <= 1024 else { return false }
                let count = max(elements.count, Int(extent))
                define(.tensor(dtype: dtype, shape: [count], elements: (0..<count).map { elements[elements.count == 1 ? 0 : $0] }))
            }
            return true
        case "ReduceProd":
            // Exporters multiply dimensions to size a flatten or a token count: [N,49] gives 49·N.
            guard let value = known(0), case .tensor(let dtype, let shape, let elements) = value, shape.count == 1,
                  let product = try? elements.reduce(SymbolicInt.constant(1), { partial, next in
                      guard let result = multiply(partial, next) else { throw FoldingStop() }
                      return result
                  }) else { return false }
            let keepdims = try context.int("keepdims", default: 1) != 0
            define(.tensor(dtype: dtype, shape: keepdims ? [1] : [], elements: [product]))
            return true
        case "Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "Less", "Greater":
            // Numbers alone are the reference evaluator's; run-time sizes the symbolic folder's.
            guard hasRunTimeSize(known(0), known(1)) else { return try foldThroughReference(context, known: known, define: define) }
            guard let left = known(0), let right = known(1), let result = elementwise(node.opType, left, right) else { return false }
            define(result)
            return true
        case "Where" where hasRunTimeSize(known(1), known(2)):
            guard let condition = known(0)?.constants, let left = known(1), let right = known(2),
                  case .tensor(let dtype, let shapeA, let a) = left, case .tensor(_, let shapeB, let b) = right,
                  let count = broadcastCount(condition.count, a.count, b.count) else { return false }
            let elements = (0..<count).map { index in
                condition[condition.count == 1 ? 0 : index] != 0 ? a[a.count == 1 ? 0 : index] : b[b.count == 1 ? 0 : index]
            }
            let shape = [shapeA, shapeB].max { $0.reduce(1, *) < $1.reduce(1, *) } ?? shapeA
            define(.tensor(dtype: dtype, shape: count == 1 && condition.count == 1 ? shape : [count], elements: elements))
            return true
        case "Range":
            let computed: Set<DType> = [.float32, .int32, .int64]
            if let dtype = (0..<3).lazy.compactMap({ context.constantData($0)?.dtype }).first(where: { !computed.contains($0) }) {
                throw context.fail("\(dtype.rawValue) operands are not supported: Keel computes float32 and integer ranges")
            }
            if let folded = try floatRange(context) {
                addConstant(name: uniqueName(output), data: folded, onnxName: output)
                return true
            }
            guard let start = known(0)?.constants?.first, let limit = known(1)?.constants?.first,
                  let delta = known(2)?.constants?.first, case .tensor(let dtype, _, _)? = known(0) else {
                // Keel's plans fix every shape before they run, and Range's operands set its length.
                throw context.fail("start, limit and delta must be known when the model is compiled (constants, or sizes of the input's shape): they set the output's length")
            }
            guard delta != 0 else { throw context.fail("delta is 0") }
            let steps = ((Double(limit) - Double(start)) / Double(delta)).rounded(.up)
            guard steps <= 1024 else {
                // Longer than shape arithmetic (MViTv2's relative positions over 56·56 tokens): a constant.
                guard steps <= Double(1 << 24) else { throw context.fail("the range would have \(Int(steps)) elements") }
                let values = (0..<Int(steps)).map { Double(start) + Double($0) * Double(delta) }
                let name = uniqueName(output)
                addConstant(name: name, data: TensorData(referenceValues: values, dtype: dtype, shape: [values.count]), onnxName: output)
                derivedConstantNames.insert(name)
                return true
            }
            var elements: [SymbolicInt] = []
            var current = start
            for _ in 0..<(steps > 0 ? Int(steps) : 0) {
                elements.append(.constant(current))
                let (next, overflow) = current.addingReportingOverflow(delta)
                guard !overflow else { break }
                current = next
            }
            define(.tensor(dtype: dtype, shape: [elements.count], elements: elements))
            return true
        default:
            return try foldThroughReference(context, known: known, define: define)
        }
    }

    /// A float32 Range whose operands are constants, as ONNX defines it: max(⌈(limit − start)/delta⌉, 0)
    /// elements start + i·delta, the count computed in float32 as the operands are. nil when an
    /// operand is not a float32 constant (an integer Range folds as shape arithmetic).
    private func floatRange(_ context: NodeContext) throws -> TensorData? {
        let operands = (0..<3).map(context.constantData)
        guard operands[0]?.dtype == .float32 else { return nil }
        let scalars = operands.compactMap { data -> Double? in
            guard let data, data.dtype == .float32, data.elementCount == 1 else { return nil }
            return Double(data.floats()[0])
        }
        guard scalars.count == 3 else { return nil }
        let (start, limit, delta) = (scalars[0], scalars[1], scalars[2])
        guard delta != 0, delta.isFinite, start.isFinite, limit.isFinite else {
            throw context.fail("start, limit and delta must be finite and delta non-zero (got \(start), \(limit), \(delta))")
        }
        let steps = Double(((Float(limit) - Float(start)) / Float(delta)).rounded(.up))
        guard steps <= 16_777_216 else { throw context.fail("would hold \(steps) elements") }
        let count = Int(max(steps, 0))
        return TensorData(referenceValues: (0..<count).map { start + Double($0) * delta }, dtype: .float32, shape: [count])
    }

    /// The ops the folder evaluates on 2-D integer tables.
    static let tableOps: Set<String> = ["Reshape", "Transpose", "Slice", "Cast", "Identity"]

    /// The [rows, columns] a Reshape target gives `count` elements (one entry may be -1); nil otherwise.
    private func tableShape(_ target: [Int64], count: Int) -> [Int]? {
        guard target.allSatisfy({ $0 >= -1 && $0 <= 1024 }), target.filter({ $0 == -1 }).count <= 1 else { return nil }
        let known = target.filter { $0 > 0 }.reduce(1, *)
        guard !target.contains(0), known > 0, count % Int(known) == 0 else { return nil }
        let shape = target.map { $0 == -1 ? count / Int(known) : Int($0) }
        return shape.reduce(1, *) == count ? shape : nil
    }

    /// ONNX Slice of a small 2-D integer table; nil for anything the folder does not evaluate.
    private func sliceTable(shape: [Int], elements: [SymbolicInt], starts: [Int], ends: [Int], axes: [Int],
                            steps: [Int]) -> (shape: [Int], elements: [SymbolicInt])? {
        guard shape.count == 2, axes.count == starts.count, steps.count == starts.count else { return nil }
        var picked = shape.map { Array(0..<$0) }
        for (index, raw) in axes.enumerated() {
            let axis = raw < 0 ? raw + 2 : raw
            guard axis == 0 || axis == 1, isValidStep(steps[index]) else { return nil }
            picked[axis] = Array(sliceIndices(count: shape[axis], start: starts[index], end: ends[index], step: steps[index]))
        }
        let result = picked[0].flatMap { row in picked[1].map { column in elements[row * shape[1] + column] } }
        return ([picked[0].count, picked[1].count], result)
    }

    /// a·b when it is a number or a multiple of one symbol.
    private func multiply(_ a: SymbolicInt, _ b: SymbolicInt) -> SymbolicInt? {
        if let x = a.constant, let y = b.constant {
            let (product, overflow) = x.multipliedReportingOverflow(by: y)
            return overflow ? nil : .constant(product)
        }
        guard let left = a.dim, let right = b.dim, let x = DimProduct([left]), let y = DimProduct([right]) else { return nil }
        let (coefficient, overflow) = x.coefficient.multipliedReportingOverflow(by: y.coefficient)
        guard !overflow, let dim = DimProduct(coefficient: coefficient, symbols: x.symbols + y.symbols).dim else { return nil }
        return SymbolicInt(dim)
    }

    /// The element count of NumPy broadcasting over 1-D (or scalar) operands; nil when they disagree.
    private func broadcastCount(_ counts: Int...) -> Int? {
        let longest = counts.max() ?? 1
        return counts.allSatisfy({ $0 == 1 || $0 == longest }) ? longest : nil
    }

    /// Two numbers of a vector that also holds run-time sizes, through the op's reference semantics.
    private func referenceElement(_ op: String, _ p: Int64, _ q: Int64) -> SymbolicInt? {
        guard let schema = OpRegistry.schema(onnxOpType: op), schema.reference != nil,
              p.magnitude < 1 << 31, q.magnitude < 1 << 31 else { return nil }
        let node = Node(name: op, op: schema.kind, inputs: ["a", "b"], outputs: ["c"], attributes: Attributes())
        let operands = [ReferenceTensor(values: [Double(p)], shape: []), ReferenceTensor(values: [Double(q)], shape: [])]
        guard let value = evaluateReference(node, inputs: operands, outputShape: [])?.first,
              let integer = Int64(exactly: value.rounded(.towardZero)) else { return nil }
        return .constant(integer)
    }

    /// Whether an operand holds a run-time size (numbers alone go through the reference evaluator).
    private func hasRunTimeSize(_ operands: KnownInts?...) -> Bool {
        operands.contains { $0.map { $0.elements != nil && $0.constants == nil } ?? false }
    }

    /// Arithmetic and comparisons on shape elements holding run-time sizes: they combine when
    /// the result has a name (49·N / 7 = 7·N, N·N does not) and compare when the answer holds
    /// for every batch (N is never -1 or 0). Numbers alone are the reference evaluator's.
    private func elementwise(_ op: String, _ left: KnownInts, _ right: KnownInts) -> KnownInts? {
        guard case .tensor(let dtype, let shapeA, let a) = left, case .tensor(_, let shapeB, let b) = right,
              let count = broadcastCount(a.count, b.count) else { return nil }
        var result: [SymbolicInt] = []
        for index in 0..<count {
            let x = a[a.count == 1 ? 0 : index], y = b[b.count == 1 ? 0 : index]
            guard let value = combine(op, x, y) else { return nil }
            result.append(value)
        }
        let comparison = op == "Equal" || op == "Less" || op == "Greater"
        let shape = a.count >= b.count ? (shapeA.count >= shapeB.count || a.count > b.count ? shapeA : shapeB) : shapeB
        return .tensor(dtype: comparison ? .bool : dtype, shape: shape, elements: result)
    }

    private func combine(_ op: String, _ x: SymbolicInt, _ y: SymbolicInt) -> SymbolicInt? {
        let truth = { (value: Bool) in SymbolicInt.constant(value ? 1 : 0) }
        if (op == "Max" || op == "Min") && x == y { return x }
        if let p = x.constant, let q = y.constant { return referenceElement(op, p, q) }
        switch op {
        case "Mul": return multiply(x, y)
        case "Div":
            guard let left = x.dim, let right = y.dim, let p = DimProduct([left]), let q = DimProduct([right]),
                  let dim = p.dividing(by: q) else { return nil }
            return SymbolicInt(dim)
        case "Add", "Sub": return y.constant == 0 ? x : (op == "Add" && x.constant == 0 ? y : nil)
        case "Max", "Min": return x == y ? x : nil
        case "Equal":
            if x == y { return truth(true) }
            // A size is at least 1 (a multiple c·N at least c): it never equals a smaller number.
            if x.isPositiveSize, let q = y.constant, q < Int64(x.dim?.coefficient ?? 1) { return truth(false) }
            if y.isPositiveSize, let p = x.constant, p < Int64(y.dim?.coefficient ?? 1) { return truth(false) }
            return nil
        case "Less", "Greater":
            let (small, large) = op == "Less" ? (x, y) : (y, x)
            if x == y { return truth(false) }
            if large.isPositiveSize, let bound = small.constant, bound < Int64(large.dim?.coefficient ?? 1) { return truth(true) }
            if small.isPositiveSize, let bound = large.constant, bound <= Int64(small.dim?.coefficient ?? 1) { return truth(false) }
            return nil
        default: return nil
        }
    }

    /// An op with reference semantics (Add, Mul, Div, Equal, Where, Mod...) whose inputs are all
    /// known numbers: evaluated now through its schema, as constant folding would, so a shape
    /// computed from them stays known. Values beyond 2^31 are left to the IR (exactness in Double).
    /// OneHot's output shape and the flat positions set to its "on" value. Evaluated while
    /// importing: the runtime computes float32 only, and exporters use OneHot on constants and
    /// sizes (GCViT's `q.repeat(B // q.shape[0], ...)` puts B in a one-hot repeats vector, which
    /// the Tile after it reads as an expand). `depth` entries along `axis`; an index (negative
    /// ones count from the end) outside [-depth, depth) sets nothing, as ONNX specifies.
    private func oneHotLayout(_ context: NodeContext) throws -> (shape: [Int], on: [Int]) {
        guard let indices = context.constantData(0), let depthData = context.constantData(1) else {
            throw context.fail("needs constant indices and depth; Keel evaluates OneHot while importing")
        }
        let depths = ReferenceTensor(depthData).values
        guard depths.count == 1, let depth = Int(exactly: depths[0].rounded(.towardZero)), depth > 0 else {
            throw context.fail("depth must be one positive number")
        }
        let rank = indices.shape.count + 1
        let requested = try context.int("axis", default: -1)
        let axis = requested < 0 ? requested + rank : requested
        guard axis >= 0, axis < rank else { throw context.fail("axis \(requested) is out of range for rank \(rank)") }
        var shape = indices.shape
        shape.insert(depth, at: axis)
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count <= 1 << 24 else { throw context.fail("the one-hot tensor would have too many elements") }
        let inner = indices.shape[axis...].reduce(1, *)
        var on: [Int] = []
        for (position, index) in ReferenceTensor(indices).values.enumerated() {
            let wrapped = Int(index.rounded(.towardZero)) + (index < 0 ? depth : 0)
            guard wrapped >= 0, wrapped < depth else { continue }
            on.append((position / inner * depth + wrapped) * inner + position % inner)
        }
        return (shape, on)
    }

    /// OneHot with constant values becomes a constant; with sizes among them (two known integers,
    /// one a run-time size) a small known tensor, as Concat of sizes is.
    private func foldOneHot(_ context: NodeContext, values known: KnownInts?, define: (KnownInts) -> Void) throws {
        let (shape, on) = try oneHotLayout(context)
        let output = context.node.outputs[0]
        if let valuesData = context.constantData(2) {
            let values = ReferenceTensor(valuesData).values
            guard values.count == 2 else { throw context.fail("values must hold two numbers (off, on)") }
            var result = [Double](repeating: values[0], count: shape.reduce(1, *))
            for position in on { result[position] = values[1] }
            // Computed, so the small folder evaluates what reads it (a Reshape to repeats).
            let name = uniqueName(output)
            addConstant(name: name, data: TensorData(referenceValues: result, dtype: valuesData.dtype, shape: shape), onnxName: output)
            derivedConstantNames.insert(name)
            return
        }
        guard case .tensor(let dtype, let valuesShape, let values)? = known, valuesShape.count <= 1, values.count == 2,
              shape.count <= 2, shape.reduce(1, *) <= 1024 else {
            throw context.fail("needs constant values, or two known sizes for a small vector or table")
        }
        var result = [SymbolicInt](repeating: values[0], count: shape.reduce(1, *))
        for position in on { result[position] = values[1] }
        define(.tensor(dtype: dtype, shape: shape, elements: result))
    }

    private func foldThroughReference(_ context: NodeContext, known: (Int) -> KnownInts?,
                                      define: (KnownInts) -> Void) throws -> Bool {
        let node = context.node
        guard let schema = OpRegistry.schema(onnxOpType: node.opType), schema.reference != nil else { return false }
        var types: [TensorType?] = []
        var tensors: [ReferenceTensor?] = []
        for index in node.inputs.indices {
            guard context.hasInput(index) else {
                types.append(nil)
                tensors.append(nil)
                continue
            }
            guard let value = known(index), case .tensor(let dtype, let shape, _) = value, let numbers = value.constants,
                  numbers.allSatisfy({ $0.magnitude < 1 << 31 }) else { return false }
            types.append(TensorType(dtype, Shape(known: shape)))
            tensors.append(ReferenceTensor(values: numbers.map(Double.init), shape: shape))
        }
        let irNode = Node(name: context.name, op: schema.kind, inputs: node.inputs, outputs: node.outputs,
                          attributes: Attributes(try directAttributes(context, schema)))
        guard let type = try? inferOutputTypes(of: irNode, inputTypes: types).first, [.int64, .int32, .bool].contains(type.dtype),
              let shape = type.shape.knownExtents, shape.count <= 1,
              let values = evaluateReference(irNode, inputs: tensors, outputShape: shape) else { return false }
        var elements: [SymbolicInt] = []
        for value in values {
            guard let integer = Int64(exactly: value.rounded(.towardZero)), integer.magnitude < 1 << 53 else { return false }
            elements.append(.constant(integer))
        }
        define(.tensor(dtype: type.dtype, shape: shape, elements: elements))
        return true
    }

    private func dtypeOf(_ value: KnownInts) -> DType {
        if case .tensor(let dtype, _, _) = value { return dtype }
        return .int64
    }

    /// Shape(x), honouring opset 15's start/end; lazy when x's rank is unknown.
    private func shapeOf(_ input: String, context: NodeContext) throws -> KnownInts {
        let start = try context.int("start", default: 0)
        let end = try context.optionalInt("end")
        guard let shape = values[input]?.shape else {
            guard start == 0, end == nil else { throw context.fail("the rank of '\(input)' is unknown, so Shape cannot be sliced") }
            return .shapeOf(input)
        }
        let all = shape.indices.map { dimElement(of: input, axis: $0) }
        let rank = all.count
        let from = min(max(start < 0 ? start + rank : start, 0), rank)
        let to = min(max((end ?? rank) < 0 ? (end ?? rank) + rank : (end ?? rank), from), rank)
        return .tensor(dtype: .int64, shape: [to - from], elements: Array(all[from..<to]))
    }

    /// What the folder knows about dimension `axis` of `value`.
    func dimElement(of value: String, axis: Int) -> SymbolicInt {
        if let shape = values[value]?.shape, shape.indices.contains(axis), let dim = shape[axis] { return SymbolicInt(dim) }
        return .dim(of: value, axis: axis)
    }

    private func element(of data: KnownInts, at index: Int64, context: NodeContext) throws -> SymbolicInt {
        switch data {
        case .shapeOf(let value):
            guard index >= 0, index <= Int64(Int32.max) else {
                throw context.fail("negative index into the shape of '\(value)', whose rank is unknown")
            }
            return dimElement(of: value, axis: Int(index))
        case .tensor(_, let shape, let elements):
            guard shape.count == 1 else { throw context.fail("gathers from a scalar") }
            let count = Int64(elements.count)
            let resolved = index < 0 ? index + count : index
            guard resolved >= 0, resolved < count else { throw context.fail("index \(index) is out of range for \(count) elements") }
            return elements[Int(resolved)]
        }
    }

    /// ONNX Slice on one axis, with its clamping rules.
    private func sliceElements(of data: KnownInts, start: Int, end: Int, step: Int,
                               context: NodeContext) throws -> [SymbolicInt] {
        let elements: [SymbolicInt]
        switch data {
        case .tensor(_, _, let values): elements = values
        case .shapeOf(let value):
            guard start >= 0, end >= start, end <= 64, step > 0 else {
                throw context.fail("slices the shape of '\(value)', whose rank is unknown")
            }
            return stride(from: start, to: end, by: step).map { dimElement(of: value, axis: $0) }
        }
        return sliceIndices(count: elements.count, start: start, end: end, step: step).map { elements[$0] }
    }

    /// Resolves a Reshape target to constants: numbers stay; a symbolic dimension becomes 0
    /// ("copy the input's dimension") when the input has that same dimension at that position,
    /// and otherwise -1 ("what is left", the same extent for every batch), the target's own -1
    /// being worked out from the element counts ([4·N,-1,16] on [N,4,16,16] is [0,16,16] with
    /// the 4·N as -1). At most one run-time size may need a -1.
    func reshapeTarget(_ target: KnownInts, input: String, allowZero: Bool, context: NodeContext) throws -> [Int] {
        guard let elements = target.elements else {
            throw context.fail("the target shape copies the whole shape of a value of unknown rank")
        }
        let inputIR = values[input]?.irName
        var result: [Int] = []
        var literalZero = false
        var copies = false
        var runTimeSizes: [(position: Int, dim: Dim)] = []
        for (position, element) in elements.enumerated() {
            let copied = dimElement(of: input, axis: position)
            switch element {
            case .constant(let value):
                guard value >= -1, value <= Int64(Int32.max) else { throw context.fail("invalid target dimension \(value)") }
                literalZero = literalZero || (value == 0 && allowZero)
                result.append(Int(value))
            case .symbol, .scaled:
                if copied == element {
                    copies = true
                    result.append(0)
                } else if let dim = element.dim {
                    runTimeSizes.append((position, dim))
                    result.append(-1)
                }
            case .dim(let value, let axis):
                guard (value == input || (inputIR != nil && values[value]?.irName == inputIR)) && axis == position else {
                    throw context.fail("target dimension \(position) depends on dimension \(axis) of '\(value)', which is unknown at import time")
                }
                copies = true
                result.append(0)
            }
        }
        if literalZero && (copies || !runTimeSizes.isEmpty) {
            throw context.fail("allowzero=1 with a zero extent and a run-time size in the same target is not supported")
        }
        guard let size = runTimeSizes.first else { return result }
        guard runTimeSizes.count == 1 else {
            throw context.fail("target dimensions \(runTimeSizes.map { "\($0.dim)" }.joined(separator: ", ")) are run-time sizes the input does not have at those positions; Keel can infer only one")
        }
        if let inferred = result.indices.first(where: { result[$0] == -1 && $0 != size.position }) {
            guard let inputDims = values[input]?.shape?.map({ $0 }), !inputDims.contains(nil),
                  let total = DimProduct(inputDims.compactMap { $0 }),
                  let others = DimProduct(result.indices.filter { $0 != inferred }.compactMap { position -> Dim? in
                      position == size.position ? size.dim : result[position] == 0 ? inputDims[position] : .known(result[position])
                  }),
                  case .known(let extent)? = total.dividing(by: others), extent <= Int(Int32.max) else {
                throw context.fail("target dimension \(size.position) is the run-time size \(size.dim), which the input does not have at that position, and the -1 at \(inferred) cannot be worked out at import time")
            }
            result[inferred] = extent
        }
        return result
    }
}

/// Where ONNX Slice starts and stops on an axis of `count` elements, with its clamping rules
/// (negative positions count from the end; out-of-range ones clamp). `step` must not be 0.
private func sliceBounds(count: Int, start: Int, end: Int, step: Int) -> (from: Int, to: Int) {
    func clamp(_ value: Int, _ low: Int, _ high: Int) -> Int { min(max(value, low), high) }
    func resolve(_ value: Int) -> Int { value < 0 ? max(value, -count - 1) + count : value }
    if step > 0 { return (clamp(resolve(start), 0, count), clamp(resolve(end), 0, count)) }
    return (clamp(resolve(start), -1, count - 1), clamp(resolve(end), -1, count - 1))
}

/// The indices Slice picks from an axis of `count` elements.
func sliceIndices(count: Int, start: Int, end: Int, step: Int) -> StrideTo<Int> {
    let bounds = sliceBounds(count: count, start: start, end: end, step: step)
    return stride(from: bounds.from, to: bounds.to, by: step)
}

/// How many elements Slice keeps from an axis of `count` elements.
func sliceLength(count: Int, start: Int, end: Int, step: Int) -> Int {
    let bounds = sliceBounds(count: count, start: start, end: end, step: step)
    let span = step > 0 ? bounds.to - bounds.from : bounds.from - bounds.to
    return span <= 0 ? 0 : (span + abs(step) - 1) / abs(step)
}

/// Ends a fold that meets a product without a name (N·N).
private struct FoldingStop: Error {}
