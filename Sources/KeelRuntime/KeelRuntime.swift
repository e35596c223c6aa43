import KeelIR
