/// The ai.onnx operators the importer accepts: those it translates to IR ops, plus those it
/// evaluates at import time (Constant, Shape, ConstantOfShape feed shape computations).
public let supportedONNXOps: Set<String> = Set(opTranslations.keys).union(["Constant", "Shape", "ConstantOfShape"])
