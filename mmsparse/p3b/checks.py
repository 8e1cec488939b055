"""Argument checks shared by :class:`~mmsparse.p3b.pruner.P3BPruner` and
the engine's ``P3BHook``.

Every check raises ``ValueError`` whose message starts with ``owner`` (the
class that was given the bad value) and names the key and allowed values.
"""
from typing import Optional

from .probes import PROBE_DESIGNS

BLOCK_BUDGETS = ('benefit', 'benefit-first', 'uniform')
ELEMENT_SCORES = ('taylor', 'magnitude')


def check_keep_ratio(keep_ratio, owner: str = 'P3B') -> None:
    """Validate ``keep_ratio`` in (0, 1] (raises ``ValueError`` starting
    with ``owner``)."""
    if isinstance(keep_ratio, bool) or not isinstance(
            keep_ratio, (int, float)) or not 0 < keep_ratio <= 1:
        raise ValueError(f'{owner}: keep_ratio must be a number in (0, 1], '
                         f'got {keep_ratio!r}')


def check_probe_args(probe: str, probe_width: int, probe_fraction: float,
                     probe_window: Optional[int], interval: int,
                     owner: str = 'P3B') -> None:
    """Validate the probe design settings (raises ``ValueError``)."""
    if probe not in PROBE_DESIGNS:
        raise ValueError(f'{owner}: probe must be one of {PROBE_DESIGNS}, '
                         f'got {probe!r}')
    if not isinstance(probe_width, int) or probe_width < 1:
        raise ValueError(f'{owner}: probe_width must be an int >= 1, got '
                         f'{probe_width!r}')
    if isinstance(probe_fraction, bool) or not isinstance(
            probe_fraction, (int, float)) or not 0 < probe_fraction <= 1:
        raise ValueError(f'{owner}: probe_fraction must be in (0, 1], got '
                         f'{probe_fraction!r}')
    if probe_window is not None and (
            not isinstance(probe_window, int) or
            not 1 <= probe_window <= interval):
        raise ValueError(f'{owner}: probe_window must be None or an int in '
                         f'[1, update_interval={interval}], got '
                         f'{probe_window!r}')


def check_ablation_args(block_budget: str, element_score: str,
                        owner: str = 'P3B') -> None:
    """Validate ``block_budget`` and ``element_score`` (the ablation
    switches)."""
    if block_budget not in BLOCK_BUDGETS:
        raise ValueError(f'{owner}: block_budget must be one of '
                         f'{BLOCK_BUDGETS}, got {block_budget!r}')
    if element_score not in ELEMENT_SCORES:
        raise ValueError(f'{owner}: element_score must be one of '
                         f'{ELEMENT_SCORES}, got {element_score!r}')


def check_width_multiple(width_multiple, owner: str = 'P3B') -> None:
    """Validate ``width_multiple`` (an int >= 1)."""
    if not isinstance(width_multiple, int) or width_multiple < 1:
        raise ValueError(f'{owner}: width_multiple must be an int >= 1, '
                         f'got {width_multiple!r}')


def check_num_classes(num_classes, owner: str = 'P3B') -> None:
    """Validate ``num_classes`` (None or an int >= 2)."""
    if num_classes is not None and (not isinstance(num_classes, int)
                                    or num_classes < 2):
        raise ValueError(f'{owner}: num_classes must be an int >= 2 or '
                         f'None, got {num_classes!r}')


__all__ = [
    'BLOCK_BUDGETS', 'ELEMENT_SCORES', 'check_keep_ratio',
    'check_probe_args', 'check_ablation_args', 'check_width_multiple',
    'check_num_classes'
]
