"""Which weights ART and the magnitude baselines prune.

Prunable are the weights of every convolution and linear layer, the first
convolution and the classifier included; biases and normalisation layers are
never pruned (HyperSparse, Sec. 4). ``nn.MultiheadAttention`` keeps its input
projection as a packed parameter instead of an ``nn.Linear``; it is a linear
layer all the same and counts as prunable.

:data:`DEFAULT_EXCLUDE` names the layers that one global threshold must not
reach in a ViT (Mask2Former) model: with ARTHook at 90 % on the toy VPP model
the patch embedding was pruned to 100 % (the backbone no longer sees the
image) and the VPP selectors to 79 %. It matches nothing in the CIFAR/digits
CNNs. Frozen parameters (``requires_grad=False``) cannot shrink and are left
out unless asked for. ``prune_only`` narrows the candidates to the names it
matches before ``exclude`` removes names from them (the ViT Mask2Former
configs prune the ViT blocks only: ``prune_only=['^backbone\\.blocks\\.']``).
"""
import re
from collections import OrderedDict
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch
import torch.nn as nn

#: Patch embedding, VPP pruner (selectors, scorers), position embeddings and
#: normalisation layers (the last two are never Conv/Linear weights; listed
#: so that a custom layer with such a name stays out too).
DEFAULT_EXCLUDE = (r'(^|\.)patch_embed\.', r'(^|\.)pruner\.',
                   r'pos_embed', r'(^|\.)(norm|ln)\w*\.')

_MHA_WEIGHTS = ('in_proj_weight', 'q_proj_weight', 'k_proj_weight',
                'v_proj_weight')


def _iter_layer_weights(module: nn.Module) -> Iterable[Tuple[str, torch.Tensor]]:
    """Yield ``(local_name, weight)`` of the prunable weights owned by one
    module (not its children)."""
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        if isinstance(getattr(module, 'weight', None), nn.Parameter):
            yield 'weight', module.weight
    elif isinstance(module, nn.MultiheadAttention):
        for name in _MHA_WEIGHTS:
            weight = getattr(module, name, None)
            if isinstance(weight, nn.Parameter):
                yield name, weight


def prunable_weights(
        model: nn.Module,
        exclude: Optional[Sequence[str]] = None,
        include_frozen: bool = True,
        skipped: Optional[Dict[str, int]] = None,
        prune_only: Optional[Sequence[str]] = None
) -> 'OrderedDict[str, nn.Parameter]':
    """Collect the prunable weights of a model in module order.

    Args:
        model (nn.Module): The (unwrapped) model.
        exclude (Sequence[str], optional): Regular expressions; a weight whose
            parameter name matches one of them (``re.search``) is skipped.
            Defaults to None.
        include_frozen (bool): Keep weights with ``requires_grad=False``.
            Defaults to True.
        skipped (dict, optional): Filled with the number of weights
            (elements) left out, under ``'outside_prune_only'`` (matching
            no ``prune_only`` pattern), ``'excluded'`` (by ``exclude``) and
            ``'frozen'``; each weight counts once, under the first of these
            rules that leaves it out.
        prune_only (Sequence[str], optional): Regular expressions; when
            given, only weights whose parameter name matches at least one
            of them (``re.search``) are candidates, and ``exclude`` still
            removes names from those. Defaults to None (every weight).

    Returns:
        OrderedDict[str, nn.Parameter]: Parameter name (as in
        ``model.named_parameters()``) to parameter; shared parameters appear
        once. The order is the same on every rank.
    """
    patterns = [re.compile(p) for p in (exclude or [])]
    only = None if prune_only is None else [re.compile(p) for p in prune_only]
    weights: 'OrderedDict[str, nn.Parameter]' = OrderedDict()
    counts = dict(outside_prune_only=0, excluded=0, frozen=0)
    for name, weight in _layer_weights(model):
        if only is not None and not any(p.search(name) for p in only):
            counts['outside_prune_only'] += weight.numel()
        elif any(p.search(name) for p in patterns):
            counts['excluded'] += weight.numel()
        elif not (include_frozen or weight.requires_grad):
            counts['frozen'] += weight.numel()
        else:
            weights[name] = weight
    if skipped is not None:
        skipped.update(counts)
    return weights


def _layer_weights(model: nn.Module) -> Iterable[Tuple[str, nn.Parameter]]:
    """``(parameter name, weight)`` of every Conv/Linear/MHA weight of the
    model in module order, shared parameters once."""
    seen = set()
    for module_name, module in model.named_modules():
        for local_name, weight in _iter_layer_weights(module):
            if id(weight) in seen:
                continue
            seen.add(id(weight))
            yield (f'{module_name}.{local_name}' if module_name else
                   local_name), weight


def count_elements(weights: Dict[str, torch.Tensor]) -> int:
    """Total number of elements of a dict of tensors."""
    return sum(w.numel() for w in weights.values())


def collect_prunable(
        model: nn.Module, exclude: Sequence[str], include_frozen: bool,
        prune_only: Optional[Sequence[str]] = None
) -> Tuple['OrderedDict[str, nn.Parameter]', str]:
    """:func:`prunable_weights` and a one-line summary of what was left out.

    Raises:
        ValueError: When ``prune_only`` matches none of the model's
            Conv/Linear/MHA weights, or when no prunable weight is left.
    """
    if prune_only is not None:
        _check_prune_only_matches(model, prune_only)
    skipped: Dict[str, int] = {}
    weights = prunable_weights(model, exclude, include_frozen, skipped,
                               prune_only)
    only = '' if prune_only is None else f'prune_only={list(prune_only)}, '
    if not weights:
        raise ValueError(
            f'the model {type(model).__name__} has no prunable layers '
            '(nn.Conv*, nn.Linear, nn.MultiheadAttention) left after '
            f'{only}exclude={exclude}, include_frozen={include_frozen}')
    hint = '' if include_frozen else '; include_frozen=True prunes them'
    outside = ('' if prune_only is None else
               f'{skipped["outside_prune_only"]} weights outside prune_only, ')
    summary = (f'{len(weights)} prunable tensors with '
               f'{count_elements(weights)} weights; left out: {outside}'
               f'{skipped["excluded"]} weights matching exclude, '
               f'{skipped["frozen"]} frozen (requires_grad=False{hint})')
    return weights, summary


def _check_prune_only_matches(model: nn.Module,
                              prune_only: Sequence[str]) -> None:
    """Raise when ``prune_only`` matches no Conv/Linear/MHA weight (a typo
    or a different module layout, e.g. a wrapped backbone)."""
    names = [name for name, _ in _layer_weights(model)]
    patterns = [re.compile(p) for p in prune_only]
    if not any(p.search(n) for p in patterns for n in names):
        examples = ', '.join(names[:3]) + (', ...' if len(names) > 3 else '')
        raise ValueError(
            f'prune_only={list(prune_only)} matches none of the '
            f'{len(names)} prunable weights (nn.Conv*, nn.Linear, '
            f'nn.MultiheadAttention) of the model {type(model).__name__} '
            f'(e.g. {examples or "none"}); give regular expressions of '
            'parameter names (re.search) or prune_only=None')
