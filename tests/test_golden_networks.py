import pytest

from golden import networks


def test_resnet18_cifar_shapes():
    layers = {layer.name: layer for layer in networks.resnet18_cifar()}
    assert len([n for n in layers if "conv" in n]) == 17  # stem + 16 block convs
    assert layers["layer4.1.conv2"].out_size == 4
    assert layers["layer2.0.conv1"].stride == 2 and layers["layer2.0.conv1"].out_size == 16
    assert layers["layer3.0.shortcut"].kernel == 1
    assert layers["fc"].gemm("forward", 128) == (10, 512, 128)


def test_resnet50_imagenet_shapes():
    layers = {layer.name: layer for layer in networks.resnet50_imagenet()}
    assert layers["conv1"].out_size == 112
    assert layers["layer4.2.conv3"].cout == 2048 and layers["layer4.2.conv3"].size == 7
    weights = sum(l.weight_count() for l in layers.values())
    assert 25_000_000 < weights < 26_000_000  # ResNet-50 has 25.5 M weights (with fc)


def test_three_gemms_of_a_conv():
    layer = networks.ConvShape("c", 16, 32, 3, 1, 1, 8)
    assert layer.gemm("forward", 2) == (32, 144, 128)
    assert layer.gemm("input_grad", 2) == (144, 32, 128)
    assert layer.gemm("weight_grad", 2) == (144, 128, 32)
    with pytest.raises(ValueError, match="gemm must be one of"):
        layer.gemm("backward", 2)
