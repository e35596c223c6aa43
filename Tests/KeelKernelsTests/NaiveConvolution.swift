/// A naive convolution in double precision, written straight from the definition, that the
/// convolution kernels are checked against: any groups, strides, dilations, paddings and either
/// layout, with bias, residual and activation applied in that order.
import Foundation
import KeelKernels

struct NaiveConvolution {
    var geometry: Conv2DGeometry
    /// [kh][kw][inputChannelsPerGroup][outputChannels], as Keras stores grouped kernels.
    var hwio: [Float]
    var bias: [Float]?
    var residual: [Float]?
    var activation: UnaryOperation = .identity

    /// Index of (image, channel, row, column) in `layout` for a tensor of `channels` × `size`.
    static func index(_ layout: ActivationLayout, image: Int, channel: Int, row: Int, column: Int,
                      channels: Int, size: Size2D) -> Int {
        switch layout {
        case .nhwc: return ((image * size.height + row) * size.width + column) * channels + channel
        case .nchw: return ((image * channels + channel) * size.height + row) * size.width + column
        }
    }

    func run(_ input: [Float]) -> [Float] {
        let g = geometry, output = g.output
        let inPerGroup = g.inputChannelsPerGroup, outPerGroup = g.outputChannelsPerGroup
        var result = [Float](repeating: 0, count: g.outputElementCount)
        for image in 0..<g.batch {
            for channel in 0..<g.outputChannels {
                let group = channel / outPerGroup
                for row in 0..<output.height {
                    for column in 0..<output.width {
                        var sum = 0.0
                        for ky in 0..<g.kernel.height {
                            let y = row * g.stride.height - g.padding.top + ky * g.dilation.height
                            guard y >= 0 && y < g.input.height else { continue }
                            for kx in 0..<g.kernel.width {
                                let x = column * g.stride.width - g.padding.left + kx * g.dilation.width
                                guard x >= 0 && x < g.input.width else { continue }
                                for c in 0..<inPerGroup {
                                    let value = input[Self.index(g.layout, image: image, channel: group * inPerGroup + c,
                                                                 row: y, column: x, channels: g.inputChannels,
                                                                 size: g.input)]
                                    let weight = hwio[((ky * g.kernel.width + kx) * inPerGroup + c) * g.outputChannels + channel]
                                    sum += Double(value) * Double(weight)
                                }
                            }
                        }
                        let at = Self.index(g.layout, image: image, channel: channel, row: row, column: column,
                                            channels: g.outputChannels, size: output)
                        if let bias { sum += Double(bias[channel]) }
                        if let residual { sum += Double(residual[at]) }
                        result[at] = Float(Self.activate(sum, activation))
                    }
                }
            }
        }
        return result
    }

    static func activate(_ x: Double, _ activation: UnaryOperation) -> Double {
        switch activation {
        case .identity: return x
        case .relu: return max(x, 0)
        case let .clip(lower, upper): return min(max(x, Double(lower)), Double(upper))
        case let .leakyRelu(alpha): return x >= 0 ? x : Double(alpha) * x
        case .sigmoid: return 1 / (1 + exp(-x))
        case .swish: return x / (1 + exp(-x))
        case let .hardSigmoid(alpha, beta): return max(0, min(1, Double(alpha) * x + Double(beta)))
        case .hardSwish: return x * max(0, min(1, x / 6 + 0.5))
        case .tanh: return Foundation.tanh(x)
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        default: preconditionFailure("no reference for \(activation)")
        }
    }
}
