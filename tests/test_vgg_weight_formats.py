"""VGG weights in Gatys' ``vgg_conv.pth`` layout and Caffe-converted layouts (issue 9 part 2).

Files are constructed here (random tensors with the published key names and shapes, saved with
torch.save); the reference forward pass is written out with F.conv2d / F.relu / F.max_pool2d in
float64, the way Gatys' notebook defines its VGG, with the Caffe input convention (BGR, 0..255, minus the
mean pixel [103.939, 116.779, 123.68]) applied by hand (tests/vgg_fixtures.py).
"""

from __future__ import annotations

import nstcore  # noqa: F401  (torchvision shim)
import pytest
import torch
import torchvision

from nstcore.backbones import create_backbone
from nstcore.errors import ClassifierUnavailableError, UnsupportedOptionError, WeightsMismatchError
from vgg_fixtures import VGG19_CONVS, caffe_input, gatys_forward, gatys_state_dict

def test_vgg_conv_pth_layout_loads_with_caffe_preprocessing(tmp_path):
    sd = gatys_state_dict()
    path = tmp_path / "vgg_conv.pth"
    torch.save(sd, path)
    net = create_backbone("vgg19", weights=str(path))
    assert net.preprocessing.name == "caffe" and net.preprocessing.channel_order == "BGR"
    assert net.weights_format == "gatys-vgg_conv" and net.weights_normalized
    assert not net.has_classifier
    with pytest.raises(ClassifierUnavailableError):
        net.logits(torch.zeros(1, 3, 32, 32))
    x01 = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ref = gatys_forward(sd, caffe_input(x01))
    with torch.no_grad():
        got = net(net.normalize(x01), ["relu1_1", "relu4_2", "relu5_1", "pool5"])
    for layer, t in got.items():
        torch.testing.assert_close(t.double(), ref[layer], rtol=1e-4, atol=1e-4 * float(ref[layer].abs().max()))
    assert float(ref["relu5_1"].abs().max()) > 0  # the comparison is not vacuous


def test_caffe_converted_vgg_with_classifier_and_override(tmp_path):
    sd = gatys_state_dict(seed=1)
    g = torch.Generator().manual_seed(2)
    for name, shape in (("fc6", (4096, 25088)), ("fc7", (4096, 4096)), ("fc8", (1000, 4096))):
        sd[f"{name}.weight"] = torch.randn(*shape, generator=g) * 0.01
        sd[f"{name}.bias"] = torch.randn(shape[0], generator=g) * 0.01
    path = tmp_path / "vgg19-caffe.pth"
    torch.save(sd, path)
    net = create_backbone("vgg19", weights=str(path))
    assert net.weights_format == "caffe" and net.preprocessing.name == "caffe" and not net.weights_normalized
    # reference: torchvision's VGG-19 holding the same tensors under its own names, fed Caffe inputs
    ref = torchvision.models.vgg19().double().eval()
    convs = [m for m in ref.features if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for m, (b, c) in zip(convs, VGG19_CONVS):
            m.weight.copy_(sd[f"conv{b}_{c}.weight"])
            m.bias.copy_(sd[f"conv{b}_{c}.bias"])
        for idx, name in ((0, "fc6"), (3, "fc7"), (6, "fc8")):
            ref.classifier[idx].weight.copy_(sd[f"{name}.weight"])
            ref.classifier[idx].bias.copy_(sd[f"{name}.bias"])
        x01 = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
        expected = ref(caffe_input(x01))
        got = net.logits(net.normalize(x01))
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-5)

    # a Caffe conversion stored under torchvision keys: the preprocessing is chosen by the caller
    tv_path = tmp_path / "vgg19-tvkeys.pth"
    torch.save(ref.float().state_dict(), tv_path)
    assert create_backbone("vgg19", weights=str(tv_path)).preprocessing.name == "imagenet"
    caffe = create_backbone("vgg19", weights=str(tv_path), preprocessing="caffe")
    assert caffe.weights_format == "torchvision" and caffe.preprocessing.name == "caffe"
    with torch.no_grad():
        torch.testing.assert_close(caffe.logits(caffe.normalize(x01)).double(), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(UnsupportedOptionError, match="caffe"):
        create_backbone("vgg19", weights="random", preprocessing="bgr")


def test_incomplete_or_wrong_variant_caffe_layouts_are_refused(tmp_path):
    sd = gatys_state_dict()
    del sd["conv3_2.weight"]
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(WeightsMismatchError, match="conv3_2.weight"):
        create_backbone("vgg19", weights=str(tmp_path / "cut.pth"))
    torch.save(gatys_state_dict(), tmp_path / "vgg19_conv.pth")
    with pytest.raises(WeightsMismatchError, match="conv3_4.weight"):
        create_backbone("vgg16", weights=str(tmp_path / "vgg19_conv.pth"))
