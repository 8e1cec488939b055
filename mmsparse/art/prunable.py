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
out unless asked for.
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
        skipped: Optional[Dict[str, int]] = None
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
            (elements) left out, under ``'excluded'`` (by ``exclude``) and
            ``'frozen'``.

    Returns:
        OrderedDict[str, nn.Parameter]: Parameter name (as in
        ``model.named_parameters()``) to parameter; shared parameters appear
        once. The order is the same on every rank.
    """
    patterns = [re.compile(p) for p in (exclude or [])]
    weights: 'OrderedDict[str, nn.Parameter]' = OrderedDict()
    counts = dict(excluded=0, frozen=0)
    seen = set()
    for module_name, module in model.named_modules():
        for local_name, weight in _iter_layer_weights(module):
            name = f'{module_name}.{local_name}' if module_name else local_name
            if id(weight) in seen:
                continue
            seen.add(id(weight))
            if any(p.search(name) for p in patterns):
                counts['excluded'] += weight.numel()
            elif not (include_frozen or weight.requires_grad):
                counts['frozen'] += weight.numel()
            else:
                weights[name] = weight
    if skipped is not None:
        skipped.update(counts)
    return weights


def count_elements(weights: Dict[str, torch.Tensor]) -> int:
    """Total number of elements of a dict of tensors."""
    return sum(w.numel() for w in weights.values())


def collect_prunable(
        model: nn.Module, exclude: Sequence[str], include_frozen: bool
) -> Tuple['OrderedDict[str, nn.Parameter]', str]:
    """:func:`prunable_weights` and a one-line summary of what was left out.

    Raises:
        ValueError: When no prunable weight is left.
    """
    skipped: Dict[str, int] = {}
    weights = prunable_weights(model, exclude, include_frozen, skipped)
    if not weights:
        raise ValueError(
            f'the model {type(model).__name__} has no prunable layers '
            '(nn.Conv*, nn.Linear, nn.MultiheadAttention) left after '
            f'exclude={exclude}, include_frozen={include_frozen}')
    hint = '' if include_frozen else '; include_frozen=True prunes them'
    summary = (f'{len(weights)} prunable tensors with '
               f'{count_elements(weights)} weights; left out: '
               f'{skipped["excluded"]} weights matching exclude, '
               f'{skipped["frozen"]} frozen (requires_grad=False{hint})')
    return weights, summary
