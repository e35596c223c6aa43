import KeelIR

/// One element of an integer tensor the importer evaluates at import time: a number, a
/// symbolic dimension (the batch `N`), or "dimension `axis` of value `of`" when that
/// dimension is not known at all.
enum SymbolicInt: Hashable {
    case constant(Int64)
    case symbol(String)
    case dim(of: String, axis: Int)

    var constant: Int64? {
        if case .constant(let value) = self { return value }
        return nil
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
    /// Shape, Constant and ConstantOfShape have no IR op and are always handled here.
    func foldShapeComputation(_ context: NodeContext) throws -> Bool {
        let node = context.node
        let output = node.outputs[0]
        func known(_ index: Int) -> KnownInts? {
            guard index < node.inputs.count, !node.inputs[index].isEmpty else { return nil }
            return values[node.inputs[index]]?.known
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
            guard let extents = known(0)?.constants, extents.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }) else {
                throw context.fail("its shape input depends on a run-time size, so the tensor cannot be built at import time")
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
            addConstant(name: uniqueName(output), data: data, onnxName: output)
            return true
        case "Identity":
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
            guard let starts, let ends, starts.count == 1, ends.count == 1,
                  (axes ?? [0]).allSatisfy({ $0 == 0 || $0 == -1 }) else { return false }
            let step = steps?.first ?? 1
            guard isValidStep(step) else { throw context.fail("invalid step \(step)") }
            let elements = try sliceElements(of: data, start: starts[0], end: ends[0], step: step, context: context)
            define(.tensor(dtype: dtypeOf(data), shape: [elements.count], elements: elements))
            return true
        case "ReduceProd":
            // Exporters multiply trailing dimensions to size a flatten: fold it when they are known.
            guard let value = known(0), case .tensor(let dtype, let shape, _) = value, shape.count == 1,
                  let factors = value.constants else { return false }
            var product: Int64 = 1
            for factor in factors {
                let (next, overflow) = product.multipliedReportingOverflow(by: factor)
                guard !overflow else { return false }
                product = next
            }
            let keepdims = try context.int("keepdims", default: 1) != 0
            define(.tensor(dtype: dtype, shape: keepdims ? [1] : [], elements: [.constant(product)]))
            return true
        default:
            return try foldThroughReference(context, known: known, define: define)
        }
    }

    /// An op with reference semantics (Add, Mul, Div, Equal, Where, Mod...) whose inputs are all
    /// known numbers: evaluated now through its schema, as constant folding would, so a shape
    /// computed from them stays known. Values beyond 2^31 are left to the IR (exactness in Double).
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
        if let shape = values[value]?.shape, shape.indices.contains(axis), let dim = shape[axis] {
            switch dim {
            case .known(let extent): return .constant(Int64(extent))
            case .symbol(let name): return .symbol(name)
            }
        }
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

    /// Resolves a Reshape target to constants: numbers stay, and a symbolic dimension becomes
    /// 0 ("copy the input's dimension") when the input has that same dimension at that position.
    func reshapeTarget(_ target: KnownInts, input: String, allowZero: Bool, context: NodeContext) throws -> [Int] {
        guard let elements = target.elements else {
            throw context.fail("the target shape copies the whole shape of a value of unknown rank")
        }
        let inputIR = values[input]?.irName
        var result: [Int] = []
        var literalZero = false
        var copies = false
        for (position, element) in elements.enumerated() {
            let copied = dimElement(of: input, axis: position)
            switch element {
            case .constant(let value):
                guard value >= -1, value <= Int64(Int32.max) else { throw context.fail("invalid target dimension \(value)") }
                literalZero = literalZero || (value == 0 && allowZero)
                result.append(Int(value))
            case .symbol(let name):
                guard copied == .symbol(name) else {
                    throw context.fail("target dimension \(position) is the run-time size '\(name)', which the input does not have at that position")
                }
                copies = true
                result.append(0)
            case .dim(let value, let axis):
                guard (value == input || (inputIR != nil && values[value]?.irName == inputIR)) && axis == position else {
                    throw context.fail("target dimension \(position) depends on dimension \(axis) of '\(value)', which is unknown at import time")
                }
                copies = true
                result.append(0)
            }
        }
        if literalZero && copies {
            throw context.fail("allowzero=1 with a zero extent and a run-time size in the same target is not supported")
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
