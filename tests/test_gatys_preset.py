"""The ``gatys-geirhos`` preset against Gatys' own code (issue 9 part 2), and the stored-vs-optimised
losses of the box policies (issue 9 part 5).

Reference values: github.com/leongatys/PytorchNeuralStyleTransfer, NeuralStyleTransfer.ipynb —
``style_layers = ['r11','r21','r31','r41','r51']``, ``content_layers = ['r42']``,
``style_weights = [1e3/n**2 for n in [64,128,256,512,512]]``, ``content_weights = [1e0]``,
``GramMatrix``: ``F F^T / (h w)``, ``GramMSELoss``: ``nn.MSELoss`` of Grams, ``nn.MSELoss`` for content,
``VGG(pool='max')`` loading ``vgg_conv.pth``, ``optim.LBFGS([opt_img])`` (lr 1, no line search),
``opt_img = content_image.clone()``, ``max_iter = 500``, ``img_size = 512``, ``postp`` clips to [0, 1].
The objective is recomputed here with F.conv2d / F.relu / F.max_pool2d in float64 on Caffe inputs
(tests/vgg_fixtures.py: gatys_forward, caffe_input).
"""

from __future__ import annotations

import warnings

import nstcore  # noqa: F401  (torchvision shim)
import pytest
import torch
import torch.nn.functional as F

from nstcore.backbones import create_backbone, get_backbone_spec
from nstcore.transfer import PRESETS, GatysBalanceWarning, TransferConfig, preset, stylize
from nstcore.transfer.driver import _build_loss
from vgg_fixtures import caffe_input, gatys_forward, gatys_state_dict

GATYS_CODE = {
    "content_layers": {"relu4_2": 1.0},
    "style_layers": {"relu1_1": 1e3 / 64**2, "relu2_1": 1e3 / 128**2, "relu3_1": 1e3 / 256**2,
                     "relu4_1": 1e3 / 512**2, "relu5_1": 1e3 / 512**2},
    "content_weight": 1.0, "style_weight": 1.0, "tv_weight": 0.0,
    "statistic": "gram", "statistic_options": {"normalization": "hw"},
    "optimizer": "lbfgs", "lr": 1.0, "line_search": None, "steps": 500, "size": 512, "init": "content",
    "pooling": "max", "box": "clip-at-end", "style_scale": 1.0, "luminance_only": False,
}


def _vgg_conv_file(path, seed=0):
    """A ``vgg_conv.pth`` of random tensors (positive biases), saved at ``path``; returns its state dict."""
    sd = gatys_state_dict(seed, weight_divisor=30, bias=lambda n, g: torch.rand(n, generator=g) * 0.5)
    torch.save(sd, path)
    return sd


def _rand(*shape, seed):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_preset_is_gatys_code_table():
    cfg = PRESETS["gatys-geirhos"]
    got = {k: cfg.to_dict()[k] for k in GATYS_CODE}
    assert got.keys() == GATYS_CODE.keys()
    for key, value in GATYS_CODE.items():
        assert got[key] == (pytest.approx(value, rel=1e-15) if key.endswith("_layers") else value), key
    spec = get_backbone_spec("vgg19")
    for layer in [*cfg.content_layers, *cfg.style_layers]:  # post-ReLU: Gatys' r42 / r11 .. r51
        assert spec.feature_info.info(layer).role == "activation", layer
    assert list(spec.channels(cfg.style_layers).values()) == [64, 128, 256, 512, 512]
    assert cfg.preset == "gatys-geirhos" and preset("gatys-geirhos", steps=3).preset == "gatys-geirhos"


def _gatys_objective(sd, x01, content01, style01):
    """Gatys' notebook loss, float64, written out: sum_l w_l MSE(G_l, A_l) + MSE(F_r42, P_r42)."""

    def feats(img):
        return gatys_forward(sd, caffe_input(img))

    def gram(t):
        b, c, h, w = t.shape
        f = t.reshape(b, c, h * w)
        return f @ f.transpose(1, 2) / (h * w)

    fx, fc, fs = feats(x01), feats(content01), feats(style01)
    weights = [1e3 / n**2 for n in [64, 128, 256, 512, 512]]
    style_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]  # Gatys' r11 .. r51
    style = sum(w * F.mse_loss(gram(fx[k]), gram(fs[k])) for w, k in zip(weights, style_layers))
    return style + 1.0 * F.mse_loss(fx["relu4_2"], fc["relu4_2"])  # Gatys' r42


def test_preset_objective_equals_gatys_code_on_vgg_conv_weights(tmp_path):
    sd = _vgg_conv_file(tmp_path / "vgg_conv.pth")
    net = create_backbone("vgg19", weights=str(tmp_path / "vgg_conv.pth"))
    cfg = preset("gatys-geirhos", size=32)
    content, style, x = _rand(1, 3, 32, 32, seed=1), _rand(1, 3, 32, 32, seed=2), _rand(1, 3, 32, 32, seed=3)
    loss_fn = _build_loss(net, cfg.replace(precision="float64"))
    loss_fn.set_targets(content=content.double(), style=style.double())
    ours = loss_fn(x.double()).total
    reference = _gatys_objective(sd, x, content, style)
    assert float(reference) > 0
    torch.testing.assert_close(ours, reference.reshape(1), rtol=1e-9, atol=0)


def test_vgg_conv_style_file_runs_the_preset_without_warning_torchvision_weights_warn(tmp_path):
    _vgg_conv_file(tmp_path / "vgg_conv.pth")
    net = create_backbone("vgg19", weights=str(tmp_path / "vgg_conv.pth"))
    cfg = preset("gatys-geirhos", size=32, steps=3)
    content, style = _rand(2, 3, 32, 32, seed=4), _rand(2, 3, 40, 40, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GatysBalanceWarning)
        result = stylize(net, content, style, config=cfg)
    assert result.balance_warning is None and result.images.shape == (2, 3, 32, 32)
    assert torch.isfinite(result.total).all()
    tv = create_backbone("vgg19", weights="random")
    with pytest.warns(GatysBalanceWarning, match="not Gatys'"):
        result = stylize(tv, content, style, config=cfg.replace(steps=1))
    assert "imagenet preprocessing" in result.balance_warning
    with warnings.catch_warnings():  # the box-constrained default is not the preset: no claim, no warning
        warnings.simplefilter("error", GatysBalanceWarning)
        stylize(tv, content, style, config=TransferConfig(size=32, steps=1))


def test_clip_at_end_records_both_losses_bounded_stores_the_optimum():
    net = create_backbone("vgg19", weights="random", seed=0)
    content, style = _rand(2, 3, 24, 24, seed=6), _rand(2, 3, 24, 24, seed=7)
    small = dict(size=24, steps=15, content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0, "relu2_1": 1.0},
                 content_weight=0.01, style_weight=1e3)
    gatys = stylize(net, content, style, config=preset("gatys-geirhos", **small))
    stored_check = _build_loss(net, preset("gatys-geirhos", **small))
    stored_check.set_targets(content=content, style=style)
    with torch.no_grad():
        torch.testing.assert_close(gatys.total, stored_check(gatys.images).total)  # the stored image's own loss
    assert gatys.box_method == "none" and not torch.equal(gatys.optimized_total, gatys.total)

    bounded = stylize(net, content, style, config=TransferConfig(**small))
    assert bounded.box_method in ("bounds", "projection")
    assert float(bounded.images.min()) >= 0 and float(bounded.images.max()) <= 1
    torch.testing.assert_close(bounded.optimized_total, bounded.total)
