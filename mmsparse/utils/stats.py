"""Paired comparisons with 95 % intervals: the one statistics helper of every experiment.

Two kinds of noise enter a comparison of two methods (rows) in our experiments:

* **training noise** (seeds): the same seed trains both rows, so the per-seed difference
  removes what the seed shares. :func:`paired_seed_interval` gives the mean difference with a
  Student-t interval over seeds.
* **evaluation noise** (test items): both rows are scored on the same held-out items (images,
  videos). :func:`paired_bootstrap` resamples the items with replacement, recomputes each row's
  metric on the *same* resample and reports the percentile interval of the difference. Metrics
  that are not means over items (video AP) are recomputed from scratch through the callables,
  so the same function serves accuracy and AP.

Everything here is plain numpy/scipy; results are plain dicts so that they go into JSON files
unchanged.
"""
from typing import Callable, Dict, Sequence

import numpy as np

__all__ = [
    'paired_seed_interval', 'paired_bootstrap', 'paired_bootstrap_mean',
    'format_diff'
]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f'stats: confidence must be in (0, 1), got {confidence!r}')


def paired_seed_interval(a: Sequence[float],
                         b: Sequence[float],
                         confidence: float = 0.95) -> Dict:
    """Mean of the paired differences ``a - b`` with a Student-t interval.

    Args:
        a (Sequence[float]): the row's metric per seed.
        b (Sequence[float]): the reference row's metric for the same seeds, in the same order.
        confidence (float): two-sided coverage of the interval. Defaults to 0.95.

    Returns:
        dict: ``diff`` (mean difference), ``low``/``high`` (interval; equal to ``diff`` when
            all differences are equal, NaN with fewer than two seeds), ``std`` (sample std of
            the differences), ``n`` (seeds), ``per_item`` (the differences), ``confidence``
            and ``method='t'``.
    """
    from scipy import stats as sps
    _check_confidence(confidence)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError('paired_seed_interval: a and b must be 1-D and of '
                         f'equal length, got shapes {a.shape} and {b.shape}')
    d = a - b
    n = len(d)
    mean = float(d.mean()) if n else float('nan')
    if n < 2:
        low = high = std = float('nan')
    else:
        std = float(d.std(ddof=1))
        half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * std / np.sqrt(n)
        low, high = mean - half, mean + half
    return dict(diff=mean, low=low, high=high, std=std, n=n,
                per_item=d.tolist(), confidence=confidence, method='t')


def bootstrap_draws(score_fn_a: Callable[[np.ndarray], float],
                    score_fn_b: Callable[[np.ndarray], float],
                    n_items: int,
                    n_boot: int = 1000,
                    seed: int = 0) -> np.ndarray:
    """``score_a - score_b`` on each of ``n_boot`` draws of ``n_items`` item indices with
    replacement: the draws of :func:`paired_bootstrap` with the same ``seed``.

    Args:
        score_fn_a (Callable): maps an int array of item indices to the row's metric.
        score_fn_b (Callable): the same for the reference row.
        n_items (int): number of test items.
        n_boot (int): bootstrap rounds. Defaults to 1000.
        seed (int): seed of the resampling. Defaults to 0.

    Returns:
        np.ndarray: shape ``(n_boot, )``.
    """
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n_items, size=n_items)
        diffs[i] = float(score_fn_a(idx)) - float(score_fn_b(idx))
    return diffs


def paired_bootstrap(score_fn_a: Callable[[np.ndarray], float],
                     score_fn_b: Callable[[np.ndarray], float],
                     n_items: int,
                     n_boot: int = 1000,
                     seed: int = 0,
                     confidence: float = 0.95) -> Dict:
    """Paired bootstrap of ``score_a - score_b`` over test items.

    Each round draws ``n_items`` item indices with replacement (an index may repeat: the score
    functions must count a repeated item as often as it is drawn, e.g. as distinct videos for
    AP) and evaluates both rows on the same draw.

    Args:
        score_fn_a (Callable): maps an int array of item indices to the row's metric.
        score_fn_b (Callable): the same for the reference row.
        n_items (int): number of test items; the full set is ``np.arange(n_items)``.
        n_boot (int): bootstrap rounds. Defaults to 1000.
        seed (int): seed of the resampling; rows compared with the same seed see the same
            draws. Defaults to 0.
        confidence (float): two-sided coverage of the percentile interval. Defaults to 0.95.

    Returns:
        dict: ``a``, ``b`` and ``diff`` on the full set, ``low``/``high`` (percentile interval
            of the difference), ``std`` (bootstrap std of the difference), ``n`` (items),
            ``n_boot``, ``confidence``, ``method='paired_bootstrap'``.
    """
    _check_confidence(confidence)
    if n_items < 1 or n_boot < 1:
        raise ValueError('paired_bootstrap: n_items and n_boot must be >= 1, '
                         f'got {n_items} and {n_boot}')
    full = np.arange(n_items)
    score_a, score_b = float(score_fn_a(full)), float(score_fn_b(full))
    diffs = bootstrap_draws(score_fn_a, score_fn_b, n_items, n_boot, seed)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    return dict(a=score_a, b=score_b, diff=score_a - score_b, low=float(low),
                high=float(high), std=float(diffs.std(ddof=1)) if n_boot > 1
                else float('nan'), n=n_items, n_boot=n_boot,
                confidence=confidence, method='paired_bootstrap')


def paired_bootstrap_mean(values_a: Sequence[float],
                          values_b: Sequence[float],
                          **kwargs) -> Dict:
    """:func:`paired_bootstrap` for metrics that are means over items (accuracy from per-image
    correctness).

    Args:
        values_a (Sequence[float]): per-item values of the row (e.g. 1.0 for a correct image).
        values_b (Sequence[float]): per-item values of the reference row on the same items.
        **kwargs: passed to :func:`paired_bootstrap` (``n_boot``, ``seed``, ``confidence``).
    """
    va = np.asarray(values_a, dtype=float)
    vb = np.asarray(values_b, dtype=float)
    if va.shape != vb.shape or va.ndim != 1:
        raise ValueError('paired_bootstrap_mean: values_a and values_b must '
                         'be 1-D and of equal length, got shapes '
                         f'{va.shape} and {vb.shape}')
    return paired_bootstrap(lambda idx: va[idx].mean(),
                            lambda idx: vb[idx].mean(), len(va), **kwargs)


def format_diff(result: Dict, scale: float = 1.0, digits: int = 2) -> str:
    """``'+1.23 [-0.40, +2.86]'``: a difference with its interval, for tables.

    A seed interval (``method='t'``) from fewer than two seeds has no interval and prints as
    ``'+1.23 (1 seed: no interval)'``.

    Args:
        result (dict): the output of one of the functions above.
        scale (float): multiply before printing (100 for percent). Defaults to 1.0.
        digits (int): decimals. Defaults to 2.
    """
    def fmt(v):
        return 'nan' if v is None or np.isnan(v) else f'{v * scale:+.{digits}f}'

    n = result.get('n', 2)
    if result.get('method') == 't' and n < 2:
        # Fewer than two seeds give no spread for a t interval: say so instead of '[nan, nan]'.
        return f"{fmt(result['diff'])} ({n} seed{'' if n == 1 else 's'}: no interval)"
    return (f"{fmt(result['diff'])} [{fmt(result['low'])}, "
            f"{fmt(result['high'])}]")
