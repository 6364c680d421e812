"""Layer shapes of the networks the benchmarks use, and the three GEMMs of each layer.

A conv layer reaches the PE array through im2col. With ``P = batch * h_out * w_out`` output
positions and ``F = cin * k * k`` im2col features, SWAT's three products are, written as
``sparse rows x reduction -> dense columns`` (the array's orientation, sparse operand first):

========== ============================ =========== ========== ============
GEMM       sparse operand               rows        reduction  dense columns
========== ============================ =========== ========== ============
forward    W~ (cout x F)                cout        F          P
input_grad W~ transposed (F x cout)     F           cout       P
weight_grad X~ transposed (F x P)       F           P          cout
========== ============================ =========== ========== ============

A linear layer is a 1x1 conv on a 1x1 input.
"""

import dataclasses

__all__ = ["ConvShape", "GEMMS", "resnet18_cifar", "resnet50_imagenet"]

GEMMS = ("forward", "input_grad", "weight_grad")


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One conv (or linear) layer: channels, square kernel, stride, padding, input size."""
    name: str
    cin: int
    cout: int
    kernel: int
    stride: int
    padding: int
    size: int  # input height = width

    @property
    def out_size(self):
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def features(self):
        """im2col features ``cin * k * k`` (the reduction of the forward product)."""
        return self.cin * self.kernel * self.kernel

    def positions(self, batch):
        return batch * self.out_size * self.out_size

    def gemm(self, which, batch):
        """``(rows, reduction, columns)`` of product ``which`` (see the module table)."""
        p = self.positions(batch)
        shapes = {
            "forward": (self.cout, self.features, p),
            "input_grad": (self.features, self.cout, p),
            "weight_grad": (self.features, p, self.cout),
        }
        if which not in shapes:
            raise ValueError(f"gemm must be one of {', '.join(GEMMS)}, not {which!r}")
        return shapes[which]

    def weight_count(self):
        return self.cout * self.features


def resnet18_cifar():
    """ResNet-18 for 32x32 CIFAR-10 inputs (3x3 stem, no max-pool), every conv and the fc."""
    layers = [ConvShape("conv1", 3, 64, 3, 1, 1, 32)]
    cin, size = 64, 32
    for stage, cout in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            prefix = f"layer{stage}.{block}"
            layers.append(ConvShape(f"{prefix}.conv1", cin, cout, 3, stride, 1, size))
            out = (size + 2 - 3) // stride + 1
            layers.append(ConvShape(f"{prefix}.conv2", cout, cout, 3, 1, 1, out))
            if stride != 1 or cin != cout:
                layers.append(ConvShape(f"{prefix}.shortcut", cin, cout, 1, stride, 0, size))
            cin, size = cout, out
    layers.append(ConvShape("fc", 512, 10, 1, 1, 0, 1))
    return layers


def resnet50_imagenet():
    """ResNet-50 for 224x224 ImageNet inputs: the 7x7 stem, every bottleneck conv, the fc."""
    layers = [ConvShape("conv1", 3, 64, 7, 2, 3, 224)]
    cin, size = 64, 56  # after the stride-2 max-pool
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        cout = 4 * width
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            prefix = f"layer{stage}.{block}"
            out = (size - 1) // stride + 1
            layers.append(ConvShape(f"{prefix}.conv1", cin, width, 1, 1, 0, size))
            layers.append(ConvShape(f"{prefix}.conv2", width, width, 3, stride, 1, size))
            layers.append(ConvShape(f"{prefix}.conv3", width, cout, 1, 1, 0, out))
            if block == 0:
                layers.append(ConvShape(f"{prefix}.downsample", cin, cout, 1, stride, 0, size))
            cin, size = cout, out
    layers.append(ConvShape("fc", 2048, 1000, 1, 1, 0, 1))
    return layers
