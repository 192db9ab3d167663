"""The command line's fixed sets (str Enums made by ``cli_options.choices``) mirror nstcore's own sets."""

from __future__ import annotations

import pickle
import typing
from enum import Enum

from pipelines import cli_options as opts


def test_choices_makes_a_str_enum_with_python_member_names():
    box = opts.choices("Box", ("bounded", "clip-at-end"))
    assert issubclass(box, str) and issubclass(box, Enum)
    assert [(m.name, m.value) for m in box] == [("bounded", "bounded"), ("clip_at_end", "clip-at-end")]
    assert box("clip-at-end") is box.clip_at_end and box.clip_at_end == "clip-at-end"
    assert opts.value(box.bounded) == "bounded" and opts.value(None) is None


def test_option_enums_pickle_by_name():
    assert pickle.loads(pickle.dumps(opts.Box.clamp_each_step)) is opts.Box.clamp_each_step


def test_fixed_sets_mirror_nstcore():
    from nstcore.backbones import RESIZE_POLICIES
    from nstcore.pixelopt import BOX_POLICIES, PRECISIONS
    from nstcore.reconstruct import Kind
    from nstcore.stats import NORMALIZATIONS

    def values(enum: type[Enum]) -> tuple[str, ...]:
        return tuple(m.value for m in enum)

    assert values(opts.Normalization) == tuple(NORMALIZATIONS)
    assert values(opts.Resize) == tuple(RESIZE_POLICIES)
    assert values(opts.Box) == tuple(BOX_POLICIES)
    assert values(opts.Precision) == tuple(PRECISIONS)
    assert values(opts.Kind) == typing.get_args(Kind)
