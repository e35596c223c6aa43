#!/usr/bin/env python3
"""Writes small models exported by PyTorch itself, and ONNX Runtime's outputs, into
Tests/KeelCLITests/Fixtures/backbones/ for the end-to-end tests: the graphs only an exporter
writes (shape arithmetic, slice assignments), which hand-built fixtures would not reproduce.

- shufflenet_nchw.onnx: two torchvision ShuffleNetV2 units (a stride-2 one with both branches,
  a stride-1 one with the channel split) on 18 channels: Split/Slice, Concat and the channel
  shuffle (a 5-D Reshape and Transpose). TorchScript exporter, opset 17.
- swin_nchw.onnx / swin_dynamo.onnx: a patch embedding and two torchvision Swin blocks (the second
  shifted, so its attention mask is built by slice assignments: ScatterND) on a 12×12 map with
  windows of 4, then the patch merging; the TorchScript export computes F.pad's pads through a
  [axes, 2] table, the dynamo export writes ScatterND and Not.
- swin_v2_nchw.onnx: the same with Swin V2 blocks: cosine attention (F.normalize: ReduceL2), a
  learned logit scale (Clip, Exp) and the relative-position MLP on a constant coordinate table.
- maxvit_nchw.onnx: a torchvision MaxViT layer on 16 channels (an MBConv with GELU after its
  convolutions and a squeeze-excitation, then window and grid attention whose relative-position
  scores are Einsum products).
- resnest_nchw.onnx: two timm ResNeSt bottlenecks with split attention over a radix of 2 (the
  second strided through its average-pool downsampling): grouped 3×3 convolutions (two groups
  of 8 and of 16 input channels) whose output is reshaped to [N, 2, C, H, W] and summed over the
  radix, once plain and once gated by a softmax over the radix.
- sknet_nchw.onnx: a timm selective-kernel convolution (SKNet's: a 3×3 and a dilated 3×3 path on
  halves of the input, stacked with Unsqueeze and Concat, summed, and summed again gated by a
  softmax over the paths) between two convolutions.

Needs torch, torchvision, timm and onnxruntime (and onnxscript for the dynamo export).
Run from the repository root: python3 tools/gen_exporter_fixtures.py
"""
import os

import numpy as np
import onnxruntime as ort
import torch
from torchvision.models.shufflenetv2 import InvertedResidual
from torchvision.models.maxvit import MaxVitLayer
from torchvision.models.swin_transformer import PatchMerging, PatchMergingV2, SwinTransformerBlock, SwinTransformerBlockV2
from timm.layers import SelectiveKernel
from timm.models.resnest import ResNestBottleneck

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "KeelCLITests", "Fixtures", "backbones")


def calibrated(model, example):
    """BatchNorm statistics of the example itself, as after training (random weights alone let
    activations drift), then eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(example)
    return model.eval()


class Swin(torch.nn.Module):
    """NCHW image -> 2×2 patches of 16 channels -> two Swin blocks (window 4, the second shifted by
    2) -> patch merging -> NCHW map."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Conv2d(3, 16, kernel_size=2, stride=2)
        self.blocks = torch.nn.Sequential(
            SwinTransformerBlock(16, 2, [4, 4], [0, 0]), SwinTransformerBlock(16, 2, [4, 4], [2, 2]))
        self.merge = PatchMerging(16)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 3, 1)
        return self.merge(self.blocks(x)).permute(0, 3, 1, 2)


class SwinV2(Swin):
    """Swin with V2 blocks and patch merging."""

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.Sequential(
            SwinTransformerBlockV2(16, 2, [4, 4], [0, 0]), SwinTransformerBlockV2(16, 2, [4, 4], [2, 2]))
        self.merge = PatchMergingV2(16)


def export(name, model, example, dynamo=False):
    path = os.path.join(OUT, f"{name}.onnx")
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=64)
        torch.onnx.export(model, (example,), dynamo=True, input_names=["input"], output_names=["output"],
                          dynamic_shapes=({0: batch},), opset_version=18).save(path)
    else:
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    feed = example.numpy()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(os.path.join(OUT, f"{name}_input.npy"), feed)
    np.save(os.path.join(OUT, f"{name}_output.npy"), session.run(None, {"input": feed})[0])
    print(f"{name}: {os.path.getsize(path)} bytes")


def main():
    torch.manual_seed(0)
    shufflenet = torch.nn.Sequential(torch.nn.Conv2d(3, 18, 3, 2, 1), InvertedResidual(18, 36, 2),
                                     InvertedResidual(36, 36, 1))
    example = torch.randn(2, 3, 22, 18)
    export("shufflenet_nchw", calibrated(shufflenet, example), example)
    swin = Swin().eval()
    example = torch.randn(2, 3, 24, 24)
    export("swin_nchw", swin, example)
    export("swin_dynamo", swin, example, dynamo=True)
    export("swin_v2_nchw", SwinV2().eval(), example)
    maxvit = MaxVitLayer(in_channels=8, out_channels=16, squeeze_ratio=0.25, expansion_ratio=4, stride=2,
                         norm_layer=torch.nn.BatchNorm2d, activation_layer=torch.nn.GELU, head_dim=8, mlp_ratio=2,
                         mlp_dropout=0.0, attention_dropout=0.0, p_stochastic_dropout=0.0, partition_size=4,
                         grid_size=(8, 8))
    example = torch.randn(2, 8, 16, 16)
    export("maxvit_nchw", calibrated(maxvit, example), example)

    def shortcut(inputs, outputs, stride):
        return torch.nn.Sequential(torch.nn.AvgPool2d(stride) if stride > 1 else torch.nn.Identity(),
                                   torch.nn.Conv2d(inputs, outputs, 1, bias=False), torch.nn.BatchNorm2d(outputs))
    resnest = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, 1, 1), torch.nn.ReLU(),
        ResNestBottleneck(16, 16, radix=2, base_width=64, downsample=shortcut(16, 64, 1)),
        ResNestBottleneck(64, 32, stride=2, radix=2, base_width=64, avd=True, downsample=shortcut(64, 128, 2)))
    example = torch.randn(2, 3, 16, 16)
    export("resnest_nchw", calibrated(resnest, example), example)
    sknet = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, 1, 1), torch.nn.ReLU(), SelectiveKernel(32, 32),
                                torch.nn.Conv2d(32, 16, 1))
    example = torch.randn(2, 3, 12, 12)
    export("sknet_nchw", calibrated(sknet, example), example)


if __name__ == "__main__":
    main()
