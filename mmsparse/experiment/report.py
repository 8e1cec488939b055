"""Report helpers: scores on draws of test items, markdown tables and the
report files.

A row's score on a draw of test items (videos, images) is memoised on the
draw (:func:`cached_score`), several rows' on the same draw are averaged
(:func:`seed_mean`); the paired comparison of two row groups that uses them
is :func:`mmsparse.experiment.tables.contrast`.
"""
import os
import os.path as osp
import shutil
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .store import atomic_write_json

ScoreFn = Callable[[np.ndarray], float]


def cached_score(score: Callable[[np.ndarray], float]) -> ScoreFn:
    """``score(idx)`` memoised on the draw ``idx`` (several contrasts of a
    report draw the same indices, and a metric such as video AP is costly
    to recompute)."""
    cache: Dict[bytes, float] = {}

    def fn(idx: np.ndarray) -> float:
        key = np.asarray(idx).tobytes()
        if key not in cache:
            cache[key] = score(idx)
        return cache[key]
    return fn


def seed_mean(fns: Sequence[ScoreFn]) -> ScoreFn:
    """The mean of several rows' scores (one per seed) on the same draw."""
    return lambda idx: float(np.mean([f(idx) for f in fns]))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
                   align: Optional[str] = None) -> List[str]:
    """The lines of a markdown table (cells as given, ``str`` applied);
    ``align``: one letter per column, ``l`` (``---``) or ``r``
    (``---:``). Defaults to None (all ``---``)."""
    rules = {'l': '---|', 'r': '---:|'}
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + ''.join(rules[a] for a in (align or 'l' * len(header)))]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return lines


def write_report(out_dirs: Iterable[str], name: str, markdown: str,
                 summary: Dict, plot: Optional[Callable[[str], None]] = None,
                 row_files: Sequence[str] = (),
                 json_indent: Optional[int] = 1) -> None:
    """Write ``<name>.md``, ``<name>.json`` (and ``<name>.png`` through
    ``plot(path)``) into each of ``out_dirs``; copy ``row_files`` into its
    ``rows/`` where it is not their folder.

    Args:
        out_dirs (Iterable[str]): Folders (e.g. the work dir and the results
            dir; the same folder once).
        name (str): File stem of the report.
        markdown (str): The tables (a newline is appended).
        summary (dict): What the JSON holds.
        plot (callable, optional): ``plot(png_path)``. Defaults to None.
        row_files (Sequence[str]): Finished row files to copy along.
            Defaults to ().
        json_indent (int, optional): Indent of the JSON. Defaults to 1.
    """
    seen = set()
    for out in out_dirs:
        real = osp.realpath(out)
        if real in seen:
            continue
        seen.add(real)
        os.makedirs(osp.join(out, 'rows'), exist_ok=True)
        tmp = osp.join(out, f'{name}.md.tmp{os.getpid()}')
        with open(tmp, 'w') as f:
            f.write(markdown + '\n')
        os.replace(tmp, osp.join(out, f'{name}.md'))
        atomic_write_json(osp.join(out, f'{name}.json'), summary,
                          indent=json_indent)
        if plot is not None:
            plot(osp.join(out, f'{name}.png'))
        for path in row_files:
            target = osp.join(out, 'rows', osp.basename(path))
            if osp.realpath(path) != osp.realpath(target):
                shutil.copy(path, target)
