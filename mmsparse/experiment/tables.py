"""Paired comparisons of row groups, and the numbers of the report tables.

The finished rows of a comparison are grouped by what they compare (method,
schedule, sparsity: :func:`by_seed`), each group by training seed. Two
groups are compared on the seeds both have (:func:`contrast`): a paired
bootstrap over test items of the seed-mean metric (each group's score on the
same draws) and a Student-t interval over the per-seed differences, both
from :mod:`mmsparse.utils.stats`.

A group's score on a draw of items is a ``group_score(rows) -> score``
function: :func:`mean_row_scores` averages per-row scores (video AP per
row), :func:`mmsparse.experiment.items.item_mean_score` pools the rows'
per-item correctness first (accuracy over test images).
"""
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple, Union)

import numpy as np

from mmsparse.utils.stats import paired_bootstrap, paired_seed_interval
from .report import ScoreFn, seed_mean

GroupScore = Callable[[Sequence[dict]], ScoreFn]
BySeed = Dict[int, dict]


def by_seed(rows: Iterable[dict], key: Union[str, Callable[[dict], Any]],
            seed_key: str = 'seed') -> Dict[Any, BySeed]:
    """Rows grouped by ``key`` (a field name or ``key(row)``), each group
    as ``{seed: row}``; groups in the order they first appear (a later row
    of the same group and seed replaces an earlier one)."""
    get = (lambda row: row[key]) if isinstance(key, str) else key
    groups: Dict[Any, BySeed] = {}
    for row in rows:
        groups.setdefault(get(row), {})[row[seed_key]] = row
    return groups


def paired_seeds(a: Mapping[int, Any], b: Mapping[int, Any]) -> List[int]:
    """The seeds of ``a`` that ``b`` has too, sorted."""
    return [s for s in sorted(a) if s in b]


def seed_means(group: BySeed, keys: Iterable[str]) -> Dict[str, float]:
    """The mean over the group's seeds of each of ``keys``."""
    seeds = sorted(group)
    return {k: float(np.mean([group[s][k] for s in seeds])) for k in keys}


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one value)."""
    return (float(np.mean(values)),
            float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)


def mean_row_scores(scores: Mapping[str, ScoreFn],
                    name_key: str = 'name') -> GroupScore:
    """``group_score`` that averages the rows' own scores on each draw
    (``scores``: row name -> ``score(indices)``)."""
    return lambda rows: seed_mean([scores[r[name_key]] for r in rows])


def contrast(a: BySeed, b: BySeed, group_score: GroupScore,
             n_items: Union[int, Callable[[dict], int]], value: str,
             n_boot: int = 1000, per_seed: bool = False,
             seed: int = 0) -> Optional[Dict]:
    """Group ``a`` against group ``b`` on the seeds both have.

    Args:
        a, b (dict): Rows by seed.
        group_score (callable): ``group_score(rows) -> score(indices)``,
            the metric of the rows (the same seeds of both groups, in the
            same order) on a draw of test items.
        n_items (int | callable): Test items (each draw takes this many),
            or ``n_items(row)`` of the first paired row of ``a``.
        value (str): The row field of the metric on all items (the t
            interval over seeds).
        n_boot (int): Bootstrap draws. Defaults to 1000.
        per_seed (bool): Also a bootstrap per seed (``a``'s row against
            ``b``'s). Defaults to False.
        seed (int): Seed of the draws. Defaults to 0.

    Returns:
        dict | None: ``seeds`` (the paired seeds), ``boot`` (the paired
        bootstrap over items of the seed-means), ``seed_interval`` (t over
        the per-seed differences) and, with ``per_seed``, ``per_seed``
        (seed -> bootstrap); None when no seed is paired.
    """
    seeds = paired_seeds(a, b)
    if not seeds:
        return None
    rows_a, rows_b = [a[s] for s in seeds], [b[s] for s in seeds]
    if callable(n_items):
        n_items = n_items(rows_a[0])
    out = dict(
        seeds=seeds,
        boot=paired_bootstrap(group_score(rows_a), group_score(rows_b),
                              n_items, n_boot=n_boot, seed=seed),
        seed_interval=paired_seed_interval([r[value] for r in rows_a],
                                           [r[value] for r in rows_b]))
    if per_seed:
        out['per_seed'] = {
            s: paired_bootstrap(group_score([a[s]]), group_score([b[s]]),
                                n_items, n_boot=n_boot, seed=seed)
            for s in seeds}
    return out


def complete_seeds(planned: Iterable[dict], done: Iterable[str]) -> List[int]:
    """Seeds of the ``planned`` rows (each with ``name`` and ``seed``)
    whose planned rows are all finished (``done``: finished row names)."""
    planned, done = list(planned), set(done)
    pending = {r['seed'] for r in planned if r['name'] not in done}
    return sorted({r['seed'] for r in planned} - pending)


def seconds_total(rows: Iterable[dict],
                  keys: Sequence[str] = ('train_seconds', 'test_seconds')
                  ) -> float:
    """The seconds the rows took (the sum of ``keys``, key by key; a None
    or missing value, e.g. a training that was reused, counts 0), to
    0.1 s."""
    rows = list(rows)
    return round(float(np.sum([r[k] for k in keys for r in rows
                               if r.get(k)])), 1)


def without(rows: Iterable[dict], keys: Sequence[str] = ('records', )
            ) -> List[dict]:
    """The rows without ``keys`` (the per-item records, for a summary)."""
    return [{k: v for k, v in r.items() if k not in keys} for r in rows]
