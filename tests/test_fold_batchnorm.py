"""Batch norm folded into the convolutions (``nstcore.backbones.fold_batchnorm``, used by ``visualize``):
the folded network equals the original computed in float64, at every layer; a network whose modules are
registered in another order than its forward applies them is left alone rather than folded wrongly."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nstcore.backbones import create_backbone
from nstcore.backbones.extractor import FeatureExtractor
from nstcore.backbones.fold_batchnorm import fold_batchnorm


def _batchnorms(model: FeatureExtractor) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.body.modules())


def _randomise_statistics(model: nn.Module, seed: int) -> None:
    """Running statistics far from (0, 1) so that a fold that is wrong shows (random weights keep the defaults)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize(("backbone", "weights"), [("efficientnet_lite0", "imagenet"), ("resnet50", "random")])
def test_folded_network_equals_the_original_in_float64(backbone, weights):
    model = create_backbone(backbone, weights=weights).eval()
    if weights == "random":
        _randomise_statistics(model, 1)
    folded = fold_batchnorm(model)
    assert _batchnorms(model) > 0 and _batchnorms(folded) == 0  # the original keeps its batch norms
    reference = copy.deepcopy(model).double()
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = reference(reference.normalize(x.double()), model.layer_names)
        got = folded(folded.normalize(x), model.layer_names)
    for layer in model.layer_names:
        scale = want[layer].abs().max()
        assert (got[layer].double() - want[layer]).abs().max() <= 1e-4 * scale, layer


class _NormThenConv(nn.Module):
    """Registers conv before bn but applies bn first: folding by registration order would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(x))


def test_a_network_whose_forward_disagrees_with_its_registration_order_is_not_folded():
    base = create_backbone("vgg19", weights="random")
    description = {key: getattr(base, key) for key in FeatureExtractor._DESCRIPTION if key != "feature_info"}
    model = FeatureExtractor(layers=[("block", _NormThenConv())], head=None, **description).eval()
    _randomise_statistics(model, 2)
    assert fold_batchnorm(model) is model and _batchnorms(model) == 1
    assert fold_batchnorm(base.eval()) is base  # VGG has no batch norm: nothing to fold


def test_exemplars_runs_the_folded_network_with_the_same_features():
    """The exemplars operation folds its trimmed network (1.2x faster forward on Lite0) and its features are
    still the original network's, computed in float64."""
    from pipelines.ops.exemplars import ExemplarsConfig, ExemplarsOp

    op = ExemplarsOp()
    op.setup(ExemplarsConfig(inputs=(), layers=("stage2", "stage4")), "cpu")
    assert _batchnorms(op.model) == 0
    reference = create_backbone("efficientnet_lite0", weights="imagenet").eval().double()
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = op.model(op.model.normalize(x), ["stage2", "stage4"])
        expected = reference(reference.normalize(x.double()), ["stage2", "stage4"])
    for layer in ("stage2", "stage4"):
        torch.testing.assert_close(ours[layer].double(), expected[layer], rtol=1e-4, atol=1e-4)
