// The public surface: one import gives the IR, the loaders, the runtime types and the passes.
@_exported import KeelIR
@_exported import KeelRuntime
@_exported import KeelPasses
@_exported import KeelImages
