"""Timing, FLOPs and table helpers shared by the benchmark tools."""
import json
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn as nn


def time_call(fn: Callable[[], object],
              repeat: int = 5,
              warmup: int = 1) -> Dict[str, float]:
    """Wall-clock of ``fn()`` in seconds: median, mean, min of ``repeat``.

    Args:
        fn (callable): Runs the measured work once (under ``no_grad`` if
            that is what should be measured).
        repeat (int): Timed runs. Defaults to 5.
        warmup (int): Untimed runs first. Defaults to 1.

    Returns:
        dict: ``median``, ``mean``, ``min``, ``stdev`` and ``runs``.
    """
    if repeat < 1:
        raise ValueError(f'repeat must be >= 1, got {repeat}')
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return dict(
        median=statistics.median(times),
        mean=statistics.fmean(times),
        min=min(times),
        stdev=statistics.stdev(times) if len(times) > 1 else 0.0,
        runs=times)


class _CallModule(nn.Module):
    """Expose ``fn(x)`` as a module so the FLOP counter can trace it."""

    def __init__(self, owner: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _sdpa_flops(inputs, outputs) -> int:
    """FLOPs of ``scaled_dot_product_attention``: QK^T and AV products.

    q (..., N, d) and k (..., M, d) cost ``prod(...) * N * M * d`` multiply-adds
    each for the two matrix products (fvcore convention: 1 MAC = 1 FLOP).
    """
    from mmengine.analysis.jit_handles import get_shape
    q_shape = get_shape(inputs[0])
    k_shape = get_shape(inputs[1])
    batch = 1
    for dim in q_shape[:-2]:
        batch *= dim
    n, d = q_shape[-2], q_shape[-1]
    return int(2 * batch * n * k_shape[-2] * d)


def count_flops(module: nn.Module,
                inputs: torch.Tensor,
                fn: Callable = None) -> Dict[str, float]:
    """FLOPs (fvcore convention: one multiply-add = 1) and parameters.

    Uses ``mmengine.analysis.FlopAnalyzer``. Operators it has no counter for
    (e.g. ``grid_sample`` in the deformable-attention fallback) are not
    counted; their names are returned under ``uncounted``.

    Args:
        module (nn.Module): Module whose parameters are counted.
        inputs (Tensor): Input of ``fn`` (or of ``module``).
        fn (callable, optional): What to trace instead of
            ``module.forward``. Defaults to None.

    Returns:
        dict: ``flops``, ``params`` and ``uncounted`` operator names.
    """
    from mmengine.analysis import FlopAnalyzer
    target = module if fn is None else _CallModule(module, fn)
    with torch.no_grad():
        analyzer = FlopAnalyzer(target, (inputs, ))
        analyzer.set_op_handle('aten::scaled_dot_product_attention',
                               _sdpa_flops)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        flops = analyzer.total()
        uncounted = sorted(analyzer.unsupported_ops().keys())
    params = sum(p.numel() for p in module.parameters())
    return dict(flops=float(flops), params=int(params), uncounted=uncounted)


def format_table(rows: List[dict], columns: Sequence[str],
                 headers: Sequence[str] = None) -> str:
    """A markdown table of ``rows`` (dicts) with the given columns."""
    headers = list(headers or columns)
    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '---|' * len(headers)]
    for row in rows:
        cells = []
        for col in columns:
            val = row.get(col, '')
            if isinstance(val, float):
                val = f'{val:.4g}'
            cells.append(str(val))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_json(obj, path: str) -> str:
    """Write ``obj`` as indented json, creating folders."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
    return osp.abspath(path)
