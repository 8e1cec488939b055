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
                fn: Callable = None,
                by_module: Sequence[str] = ()) -> Dict[str, float]:
    """FLOPs (fvcore convention: one multiply-add = 1) and parameters.

    Uses ``mmengine.analysis.FlopAnalyzer``. Operators it has no counter for
    (e.g. ``grid_sample`` in the deformable-attention fallback) are not
    counted; their names are returned under ``uncounted``.

    Args:
        module (nn.Module): Module whose parameters are counted.
        inputs (Tensor): Input of ``fn`` (or of ``module``).
        fn (callable, optional): What to trace instead of
            ``module.forward``. Defaults to None.
        by_module (Sequence[str]): Names of submodules of ``module`` (as in
            ``named_modules``) whose FLOPs are returned too, under
            ``module_flops`` (0 for a module the trace never entered).
            Defaults to ().

    Returns:
        dict: ``flops``, ``params``, ``uncounted`` operator names and
        ``module_flops``.
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
        prefix = '' if fn is None else 'owner.'
        per_module = analyzer.by_module() if by_module else {}
    params = sum(p.numel() for p in module.parameters())
    module_flops = {n: float(per_module.get(prefix + n, 0)) for n in by_module}
    return dict(flops=float(flops), params=int(params), uncounted=uncounted,
                module_flops=module_flops)


class ModuleTimer:
    """Wall-clock seconds spent inside modules, summed per named part.

    Forward pre/post hooks read the clock around every call of the given
    modules; the seconds add up per part until :meth:`reset`. A call nested
    in another call of the same part counts once (the outer one). Use it
    inside a timed run to split it (on a GPU, synchronise in the caller: the
    hooks read the host clock).

    :attr:`calls` counts the (outermost) calls per part.

    Args:
        parts (dict[str, Sequence[nn.Module]]): Part name -> the modules
            whose calls count for it.
        clock (callable): Returns the time in seconds. Defaults to
            ``time.perf_counter``.
    """

    def __init__(self, parts: Dict[str, Sequence[nn.Module]],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.seconds = dict.fromkeys(parts, 0.0)
        self.calls = dict.fromkeys(parts, 0)
        self._start = dict.fromkeys(parts, 0.0)
        self._depth = dict.fromkeys(parts, 0)
        self._handles = []
        for name, modules in parts.items():
            for m in modules:
                self._handles.append(
                    m.register_forward_pre_hook(self._pre_hook(name)))
                self._handles.append(
                    m.register_forward_hook(self._post_hook(name)))

    def _pre_hook(self, name: str) -> Callable:

        def hook(module, args) -> None:
            if self._depth[name] == 0:
                self.calls[name] += 1
                self._start[name] = self.clock()
            self._depth[name] += 1

        return hook

    def _post_hook(self, name: str) -> Callable:

        def hook(module, args, output) -> None:
            self._depth[name] -= 1
            if self._depth[name] == 0:
                self.seconds[name] += self.clock() - self._start[name]

        return hook

    def reset(self) -> None:
        """Zero every part (seconds and calls)."""
        self.seconds = dict.fromkeys(self.seconds, 0.0)
        self.calls = dict.fromkeys(self.calls, 0)

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


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


def time_interleaved(fns: Dict[str, Callable[[], object]],
                     rounds: int = 5,
                     warmup: int = 1) -> Dict[str, List[float]]:
    """Wall-clock (s) of several callables, interleaved round by round.

    Each round runs every callable once, in order, so that a load change on
    a shared machine hits all of them alike; compare their medians.

    Args:
        fns (dict): Name to callable (runs the measured work once).
        rounds (int): Timed rounds. Defaults to 5.
        warmup (int): Untimed rounds first. Defaults to 1.

    Returns:
        dict: Name to the list of ``rounds`` times.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
