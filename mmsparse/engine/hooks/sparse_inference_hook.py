"""Run an ART-pruned model's test with sparse kernels."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsparse.registry import HOOKS
from mmsparse.utils.sparse_layers import (DEFAULT_LAYERS, DEFAULT_MIN_SPARSITY,
                                          KERNELS, sparsify_model)


@HOOKS.register_module()
class SparseInferenceHook(Hook):
    """Swap sparse-enough Linear / Conv2d layers for sparse-kernel layers
    before testing (:func:`mmsparse.utils.sparse_layers.sparsify_model`).

    ``before_test`` runs after the runner loaded ``load_from`` (a dense or a
    ``sparse://`` checkpoint), so the zeros of the loaded weights decide
    what is stored sparse. Testing only: the swapped layers have no weight
    gradient, so the hook does nothing in training or validation.

    Example:
        >>> custom_hooks = [dict(type='SparseInferenceHook',
        ...                      min_sparsity=0.85)]

    Args:
        min_sparsity (float): A layer is swapped when at least this fraction
            of its weight is zero. Defaults to
            :data:`~mmsparse.utils.sparse_layers.DEFAULT_MIN_SPARSITY`.
        kernel (str): One of
            :data:`~mmsparse.utils.sparse_layers.KERNELS`. Defaults to 'csr'.
        layers (Sequence[str]): 'linear' and / or 'conv'. Defaults to
            :data:`~mmsparse.utils.sparse_layers.DEFAULT_LAYERS`.
        exclude (Sequence[str], optional): Regular expressions on module
            names that stay dense. Defaults to None.
    """

    priority = 'LOW'

    def __init__(self,
                 min_sparsity: float = DEFAULT_MIN_SPARSITY,
                 kernel: str = 'csr',
                 layers: Sequence[str] = DEFAULT_LAYERS,
                 exclude: Optional[Sequence[str]] = None) -> None:
        name = type(self).__name__
        if kernel not in KERNELS:
            raise ValueError(f'{name}: kernel must be one of {KERNELS}, got '
                             f'{kernel!r}')
        if not 0.0 <= float(min_sparsity) <= 1.0:
            raise ValueError(f'{name}: min_sparsity must be in [0, 1], got '
                             f'{min_sparsity!r}')
        bad = set(layers) - {'linear', 'conv'}
        if bad:
            raise ValueError(f"{name}: layers must be among ('linear', "
                             f"'conv'), got {sorted(bad)}")
        self.min_sparsity = float(min_sparsity)
        self.kernel = kernel
        self.layers = tuple(layers)
        self.exclude = list(exclude or [])

    def before_test(self, runner) -> None:
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        swapped = sparsify_model(model, self.min_sparsity, self.kernel,
                                 self.layers, self.exclude)
        nnz = sum(round((1 - s['sparsity']) * _numel(s['shape']))
                  for s in swapped)
        total = sum(_numel(s['shape']) for s in swapped)
        runner.logger.info(
            f'{type(self).__name__}: {len(swapped)} layers on the '
            f'{self.kernel!r} sparse kernel (at least {self.min_sparsity:g} '
            f'sparse; {nnz}/{total} weights non-zero)')


def _numel(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out
