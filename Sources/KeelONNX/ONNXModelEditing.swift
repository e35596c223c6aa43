import KeelIR

/// Models built or specialised in code: a caller that knows an input's value at compile time
/// (a shape, an axis list) turns it into an initializer before import.
extension ONNXTensor {
    public init(named name: String, value data: TensorData) {
        self.name = name
        self.data = data
    }
}
