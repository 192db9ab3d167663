"""Issue 11: torchvision:<arch> networks with graph-node layers, package.module:factory networks,
label maps and 16-output networks. References are computed independently: torchvision's own modules
called directly (not through torch.fx), and hand-computed category probabilities."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import nstcore  # noqa: F401  (torchvision shim)
import torchvision
from nstcore.backbones import FeatureExtractor, create_backbone, get_backbone_spec
from nstcore.classify import CATEGORIES, classify_probabilities
from nstcore.errors import UnknownBackboneError, UnknownLayerError, UnsupportedOptionError, WeightsCorruptError
from nstcore.label_maps import LabelMapError

sys.path.insert(0, str(Path(__file__).parent))


def seeded(arch: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torchvision.models.get_model(arch, weights=None, **kwargs).eval()


def ours_and_seeded(arch: str, seed: int) -> tuple[FeatureExtractor, torch.nn.Module]:
    """``torchvision:<arch>`` through nstcore with random weights ``seed``, and torchvision's own module
    built with the same seed (the reference, called directly)."""
    return create_backbone(f"torchvision:{arch}", weights="random", seed=seed), seeded(arch, seed)


@torch.no_grad()
def test_resnet18_two_nodes_and_logits_match_direct_modules():
    net, ref = ours_and_seeded("resnet18", 3)
    x = torch.rand(2, 3, 64, 64)
    feats = net(x, ["layer1.0.relu_1", "layer3"])
    stem = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
    l1_0 = ref.layer1[0](stem)
    torch.testing.assert_close(feats["layer1.0.relu_1"], l1_0)
    torch.testing.assert_close(feats["layer3"], ref.layer3(ref.layer2(ref.layer1[1](l1_0))))
    torch.testing.assert_close(net.logits(x), ref(x))
    assert net.channels(["layer1.0.relu_1", "layer3"]) == {"layer1.0.relu_1": 64, "layer3": 256}
    assert net.weights_sha256 == "random-seed3" and net.has_classifier


@torch.no_grad()
def test_network_is_cut_after_the_deepest_requested_node():
    net = create_backbone("torchvision:resnet18", weights="random", seed=0)
    calls: list[str] = []
    for name in ("layer2.0.conv1", "layer2.1.conv1", "layer4.0.conv1", "fc"):
        net.net.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    trimmed = net.trimmed("layer2")
    x = torch.rand(1, 3, 32, 32)
    trimmed(x, ["layer1", "layer2.0.add"])  # first call traces the graph (tracing calls the modules too)
    calls.clear()
    trimmed(x, ["layer1", "layer2.0.add"])
    assert calls == ["layer2.0.conv1"]  # nothing after layer2.0.add runs
    assert not trimmed.has_classifier


@torch.no_grad()
@pytest.mark.parametrize("arch,node,direct", [
    ("mobilenet_v3_small", "features.3", lambda m, x: m.features[:4](x)),
    ("convnext_tiny", "features.3", lambda m, x: m.features[:4](x)),
])
def test_other_families_nodes_match_direct_modules(arch, node, direct):
    net, ref = ours_and_seeded(arch, 1)
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(net(x, [node])[node], direct(ref, x))
    torch.testing.assert_close(net(x, "features.1")["features.1"], ref.features[:2](x))


@torch.no_grad()
def test_vit_token_nodes_become_feature_maps():
    net, ref = ours_and_seeded("vit_b_16", 2)
    x = torch.rand(1, 3, 224, 224)
    out = net(x, ["encoder.layers.encoder_layer_0", "encoder.ln"])
    tokens = ref._process_input(x)
    tokens = torch.cat([ref.class_token.expand(1, -1, -1), tokens], dim=1)
    enc = ref.encoder
    first = enc.layers[0](enc.dropout(tokens + enc.pos_embedding))
    torch.testing.assert_close(out["encoder.layers.encoder_layer_0"], first.transpose(1, 2)[..., None])
    assert out["encoder.ln"].shape == (1, 768, 197, 1)


def test_preprocessing_from_weights_metadata_and_no_crop_at_input_size():
    # published eval transforms: ConvNeXt-Tiny resize 236 / crop 224; Inception-v3 342 / 299 (torchvision docs)
    conv = get_backbone_spec("torchvision:convnext_tiny").preprocessing
    assert (conv.resize_size, conv.input_size, conv.interpolation) == (236, 224, "bilinear")
    inc = torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.transforms()
    assert (inc.resize_size, inc.crop_size) == ([342], [299])
    img = Image.new("RGB", (224, 224), (10, 200, 30))
    img.putpixel((0, 0), (255, 0, 0))
    x, rec = conv.prepare_recorded(img)
    assert not rec["cropped"] and rec["resize_kernel"] is None and x[0, 0, 0] == 1.0
    _, rec = conv.prepare_recorded(Image.new("RGB", (300, 400)))
    assert rec["cropped"] and (rec["input_height"], rec["input_width"]) == (224, 224)


@torch.no_grad()
def test_saved_state_dict_with_16_outputs_is_loaded_and_used_directly(tmp_path):
    ref = seeded("resnet18", 7, num_classes=16)
    with torch.no_grad():
        ref.fc.weight.zero_()
        ref.fc.bias.copy_(torch.arange(16.0) * 0.1)
        ref.fc.bias[CATEGORIES.index("oven")] = 5.0
    path = tmp_path / "my-resnet18.pth"
    torch.save(ref.state_dict(), path)
    net = create_backbone("torchvision:resnet18", weights=str(path))
    assert net.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert net.weights_tag == "file:my-resnet18.pth"
    x = torch.rand(2, 3, 32, 32)
    logits = net.logits(x)
    torch.testing.assert_close(logits, ref(x))
    out = classify_probabilities(torch.softmax(logits, 1), shape_categories=["oven", "cat"],
                                 texture_categories=["truck", None])
    assert [o.decision for o in out] == ["oven", "oven"]
    # 16 outputs: rank 1 = oven (bias 5), then truck (index 15, bias 1.5) is 2nd
    assert out[0].shape_rank == 1 and out[0].texture_rank == 2 and out[1].texture_rank is None


def write_map(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@torch.no_grad()
@pytest.mark.parametrize("csv_text", [
    "index,category\n0,cat\n1,cat\n2,cat\n3,dog\n4,knife\n5,oven\n6,oven\n",
    "name,category\nclass0,cat\nclass1,cat\nclass2,Cat\nclass3,dog\nclass4,knife\nclass5,oven\nclass6,oven\n",
])
def test_factory_network_with_label_map_uses_mean_of_softmax(tmp_path, csv_text):
    net = create_backbone("own_network_factory:ten_way", label_map=write_map(tmp_path / "map.csv", csv_text))
    assert net.preprocessing.input_size == 32 and net.weights_tag == "factory"
    probs = torch.softmax(net.logits(net.normalize(torch.rand(1, 3, 32, 32))), 1)
    (out,) = classify_probabilities(probs, shape_categories=["cat"], texture_categories=["oven"],
                                    label_map=net.label_map, class_names=net.class_names)
    # hand: cat (0.30+0+0)/3 = 0.10, dog 0.25, knife 0.15, oven (0.10+0.05)/2 = 0.075 -> dog
    # (a sum rule or the raw argmax would say cat)
    assert out.decision == "dog"
    p16 = dict(zip(CATEGORIES, out.probs16))
    assert p16["cat"] == pytest.approx(0.10, abs=1e-6) and p16["oven"] == pytest.approx(0.075, abs=1e-6)
    assert p16["bear"] == 0.0
    assert (out.shape_rank, out.texture_rank, out.top5) == (1, 4, [0, 3, 4, 5, 6])
    assert "conv_proj" not in net.layer_names and net(torch.rand(1, 3, 32, 32), "1")["1"].shape == (1, 4, 32, 32)


def test_ten_outputs_without_label_map_is_a_clear_error():
    with pytest.raises(LabelMapError, match="10 outputs.*--label-map"):
        classify_probabilities(torch.full((1, 10), 0.1), shape_categories=["cat"], texture_categories=["dog"])


@pytest.mark.parametrize("text,match", [
    ("index,category\n0,zebra\n", "line 2: unknown category 'zebra'"),
    ("idx,cat\n0,cat\n", "line 1: header"),
    ("index,category\n0,cat\n0,dog\n", "both 'cat' and 'dog'"),
    ("index,category\n12,cat\n", "index 12 but the network has only 10"),
])
def test_bad_label_maps_are_named(tmp_path, text, match):
    path = write_map(tmp_path / "bad.csv", text)
    with pytest.raises(LabelMapError, match=match):
        net = create_backbone("own_network_factory:ten_way", label_map=path)
        classify_probabilities(torch.full((1, 10), 0.1), shape_categories=["cat"], texture_categories=["dog"],
                               label_map=net.label_map)


def test_bad_names_are_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(UnknownBackboneError, match="torchvision:resnet18"):
        get_backbone_spec("torchvision:resnet7")
    with pytest.raises(UnsupportedOptionError, match="cannot import module 'no_such_pkg.nets'"):
        get_backbone_spec("no_such_pkg.nets:f")
    with pytest.raises(UnsupportedOptionError, match="must return a tuple"):
        get_backbone_spec("own_network_factory:not_a_pair")
    with pytest.raises(UnknownLayerError, match="no layer 'layer9'"):
        create_backbone("torchvision:resnet18", weights="random")(torch.rand(1, 3, 32, 32), ["layer9"])


def test_imagenet_weights_are_looked_up_in_the_hub_cache_only(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    from nstcore.errors import WeightsNotFoundError
    with pytest.raises(WeightsNotFoundError, match="not in the torch hub cache.*does not download"):
        create_backbone("torchvision:resnet18", weights="imagenet")
    # a cached file is found there and checked against the hash prefix in its name
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    fake = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    torch.save(seeded("resnet18").state_dict(), fake)
    with pytest.raises(WeightsCorruptError, match="resnet18-f37072fd.pth"):
        create_backbone("torchvision:resnet18", weights="imagenet")
    # a bare file name absent here is looked up in the hub cache
    torch.save(seeded("resnet18", 4).state_dict(), tmp_path / "hub" / "checkpoints" / "my-finetune.pth")
    monkeypatch.chdir(tmp_path)
    net = create_backbone("torchvision:resnet18", weights="my-finetune.pth")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.logits(x), seeded("resnet18", 4)(x))


@torch.no_grad()
def test_module_path_and_its_last_node_requested_together():
    net = create_backbone("torchvision:resnet18", weights="random", seed=0)
    out = net(torch.rand(1, 3, 32, 32), ["layer1", "layer1.1.relu_1", "layer2.0"])
    assert torch.equal(out["layer1"], out["layer1.1.relu_1"]) and out["layer2.0"].shape == (1, 128, 4, 4)
    names = net.layer_names
    assert names.index("layer1") == names.index("layer1.1.relu_1") + 2  # after layer1.1 (placed first)


def test_models_command_lists_layers_with_shapes_and_torchvision_archs():
    from pipelines.commands_models import models_command

    text = models_command(name="own_network_factory:ten_way", layers=True)
    # conv 3->4 (padding 1) at 32 px keeps 32x32; linear 4->10
    rows = [line.split() for line in text.splitlines()[-5:]]
    assert rows == [["0", "4", "4x32x32"], ["1", "4", "4x32x32"], ["2", "4", "4x1x1"], ["3", "4", "4x1x1"],
                    ["4", "10", "10x1x1"]]
    listing = models_command()
    assert "torchvision:convnext_tiny" in listing and "torchvision:vit_b_16" in listing and "resnet50 " in listing


@torch.no_grad()
def test_grams_on_two_named_nodes_match_float64_definition():
    from nstcore.stats.gram import gram_matrix

    net = create_backbone("torchvision:mobilenet_v3_small", weights="random", seed=4)
    x = torch.rand(2, 3, 48, 48)
    feats = net(net.normalize(x), ["features.1", "features.3.add"])
    for name, f in feats.items():
        b, c, h, w = f.shape
        flat = f.double().reshape(b, c, h * w)
        reference = flat @ flat.transpose(1, 2) / (h * w)  # Gatys et al. 2016, Eq. 3, divided by H*W
        torch.testing.assert_close(gram_matrix(f, normalization="hw").double(), reference, rtol=1e-5, atol=1e-6)


def test_short_stylize_with_a_torchvision_network_lowers_the_loss():
    from nstcore.transfer import TransferConfig, stylize

    net = create_backbone("torchvision:resnet18", weights="random", seed=0)
    torch.manual_seed(0)
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    config = TransferConfig(content_layers={"layer2": 1.0}, style_layers={"relu": 1.0, "layer1.0.relu_1": 1.0},
                            steps=5, size=None, record_every=1)
    result = stylize(net, content, style, config=config)
    assert result.images.shape == (1, 3, 32, 32) and torch.isfinite(result.images).all()
    first_total = result.curves[0][1]
    assert (result.total < first_total).all()  # the objective went down from the content init


@torch.no_grad()
def test_timm_network_with_local_safetensors_file(tmp_path):
    timm = pytest.importorskip("timm", reason="optional extra texprobe[timm] not installed")
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        ref = timm.create_model("resnet18", pretrained=False, num_classes=16).eval()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    net = create_backbone("timm:resnet18", weights=str(path))
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(net.logits(x), ref(x))
    torch.testing.assert_close(net(x, "layer2")["layer2"], ref.layer2(ref.layer1(ref.maxpool(ref.act1(ref.bn1(ref.conv1(x)))))))
    # timm's own eval transform for this model: Resize(shorter side) then CenterCrop
    from timm.data import create_transform, resolve_data_config

    resize, crop = create_transform(**resolve_data_config({}, model=ref)).transforms[:2]
    assert (net.preprocessing.resize_size, net.preprocessing.input_size) == (resize.size, crop.size[0])
    assert net.preprocessing.interpolation == resize.interpolation.value
