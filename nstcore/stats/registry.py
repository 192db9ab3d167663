"""The plug-in interface (:class:`StyleStatistic`) and the registry of statistics by name."""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import Tensor

from nstcore.stats._base import StatisticsError, UnknownStatisticError

__all__ = ["STATISTICS", "StyleStatistic", "describe_statistics", "get_statistic", "list_statistics",
           "parse_statistic", "register_statistic"]


class StyleStatistic(abc.ABC):
    """A style representation plus a distance; per-image losses, never reduced over the batch."""

    name: ClassVar[str]
    #: The option a ``name:VALUE`` spec sets (e.g. ``moments:4`` -> ``k=4``); None: the name takes no value.
    positional: ClassVar[str | None] = None

    @abc.abstractmethod
    def target(self, features: Tensor) -> Tensor:
        """What to match, ``[B, ...]`` float32, from features ``[B, C, H, W]``.

        Not detached: compute it under ``torch.no_grad()`` or ``.detach()`` it for a fixed target.
        """

    @abc.abstractmethod
    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        """Per-image loss ``[B]`` (float32) between ``features`` and a :meth:`target`."""

    def __call__(self, features: Tensor, target: Tensor) -> Tensor:
        return self.loss(features, target)

    def config(self) -> dict[str, object]:
        """The keyword options this instance was built with."""
        return {}

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({options})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.config() == other.config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.config().items()))))


#: name -> class of every registered style statistic.
STATISTICS: dict[str, type[StyleStatistic]] = {}


def register_statistic(cls: type[StyleStatistic]) -> type[StyleStatistic]:
    """Class decorator: add ``cls`` to :data:`STATISTICS` under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise StatisticsError(f"register_statistic: {cls.__name__} needs a non-empty class attribute 'name'.")
    if name in STATISTICS and STATISTICS[name] is not cls:
        raise StatisticsError(f"register_statistic: name {name!r} is already taken by {STATISTICS[name].__name__}.")
    STATISTICS[name] = cls
    return cls


def get_statistic(name: str, **options: object) -> StyleStatistic:
    """Build the statistic registered as ``name`` with keyword ``options``."""
    try:
        cls = STATISTICS[name]
    except KeyError:
        raise UnknownStatisticError(
            f"get_statistic: unknown statistic {name!r}; available: {', '.join(list_statistics())}."
        ) from None
    return cls(**options)  # type: ignore[call-arg]


def list_statistics() -> list[str]:
    """Sorted names of the registered statistics."""
    return sorted(STATISTICS)


def parse_statistic(spec: str) -> tuple[str, dict[str, object]]:
    """``'name'`` or ``'name:VALUE'`` (an integer for the statistic's :attr:`~StyleStatistic.positional`
    option, e.g. ``moments:4``, ``sliced_wasserstein:64``) -> (name, options); a clear error otherwise."""
    name, sep, value = str(spec).partition(":")
    if name not in STATISTICS:
        raise UnknownStatisticError(f"unknown statistic {name!r}; available: {', '.join(list_statistics())}.")
    if not sep:
        return name, {}
    option = STATISTICS[name].positional
    if option is None:
        raise StatisticsError(f"statistic {name!r} takes no ':{value}' (write just {name!r}).")
    try:
        number = int(value)
    except ValueError:
        raise StatisticsError(f"statistic {spec!r}: {value!r} after ':' must be an integer ({option}).") from None
    return name, {option: number}


def statistic_options(spec: str) -> tuple[str, dict[str, object]]:
    """``'name[:VALUE]'`` -> (name, options) with ``normalization='hw'`` where the statistic takes one (as
    Gatys' Gram in the presets); what ``--statistic`` means on every command."""
    import inspect

    name, options = parse_statistic(spec)
    takes = inspect.signature(STATISTICS[name]).parameters
    return name, {**({"normalization": "hw"} if "normalization" in takes else {}), **options}


def statistic_from_spec(spec: str) -> StyleStatistic:
    """The statistic of :func:`statistic_options`."""
    name, options = statistic_options(spec)
    return get_statistic(name, **options)


def describe_statistics() -> list[tuple[str, str, dict[str, object]]]:
    """(name, first docstring line, default options) of every registered statistic, sorted by name."""
    out = []
    for name in list_statistics():
        cls = STATISTICS[name]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        out.append((name + (f"[:{cls.positional}]" if cls.positional else ""), " ".join(doc.split()),
                    cls().config()))
    return out
