"""Argument checks shared by :class:`~mmsparse.p3b.pruner.P3BPruner` and
the engine's ``P3BHook``, and the check of the task P3B is run on.

Every check raises ``ValueError`` whose message starts with ``owner`` (the
class that was given the bad value) and names the key and allowed values.
"""
from typing import Any, Callable, Optional

import torch.nn as nn

from .adapter import find_backbone
from .probes import PROBE_DESIGNS
from .targets import check_class_labels

BLOCK_BUDGETS = ('benefit', 'benefit-first', 'uniform')
ELEMENT_SCORES = ('taylor', 'magnitude')

#: What to do with a model P3B cannot prune directly.
PIPELINE_HINT = (
    'P3B measures block benefit with classification probes, so it runs on '
    'an image classifier with class labels. To prune the ViT of a video / '
    'detection model (e.g. a VPP-wrapped Mask2Former): run P3BHook on a '
    'classification model with the same ViT, take the slim ViT it exports '
    '(<work_dir>/p3b/slim_model.py + slim_model.pth) and use it as the '
    "backbone of that model: type='P3BViTPyramid', export='<work_dir>/p3b' "
    '(wrapped by VPPBackbone for VPP; see configs/composed/)')


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


def probe_num_classes(model: nn.Module, num_classes: Optional[int],
                      owner: str = 'P3B'):
    """``num_classes`` if given, else the model's ``head.num_classes``
    (raises ``ValueError`` starting with ``owner`` if it has none)."""
    num_classes = num_classes or getattr(
        getattr(model, 'head', None), 'num_classes', None)
    if num_classes is None:
        raise ValueError(f'{owner}: set num_classes; the model has no '
                         '`head.num_classes` to read it from. '
                         + PIPELINE_HINT)
    return num_classes


def check_task(model: nn.Module, read_sample: Callable[[], Any],
               warning: Callable[[str], None], owner: str = 'P3B') -> None:
    """Fail before training on a model P3B cannot prune.

    Raises ``TypeError`` for a backbone that wraps another one (VPP) and
    ``ValueError`` for training samples without class labels, both ending
    with :data:`PIPELINE_HINT`.

    Args:
        model (nn.Module): The task model.
        read_sample (callable): Returns one training sample (a dataset
            item); if it raises, the label check is skipped with a warning.
        warning (callable): Logs a warning.
        owner (str): Start of the messages. Defaults to 'P3B'.
    """
    backbone = find_backbone(model)
    inner = getattr(backbone, 'backbone', None)
    if isinstance(inner, nn.Module):
        raise TypeError(
            f'{owner}: cannot prune {type(backbone).__name__} (a backbone '
            f'wrapping {type(inner).__name__}). ' + PIPELINE_HINT)
    try:
        sample = read_sample()
    except Exception as err:  # data the check cannot read: skip it
        warning(f'{owner}: could not read a training sample to check its '
                f'labels ({err!r})')
        return
    check_class_labels(sample, owner, PIPELINE_HINT)


__all__ = [
    'BLOCK_BUDGETS', 'ELEMENT_SCORES', 'PIPELINE_HINT', 'check_keep_ratio',
    'check_probe_args', 'check_ablation_args', 'check_width_multiple',
    'check_num_classes', 'probe_num_classes', 'check_task'
]
