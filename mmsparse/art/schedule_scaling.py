"""The reference's ART schedule scaled to a shorter run (plain Python).

A run with fewer iterations than the reference (HyperSparse: CIFAR-10 at
batch 64, 782 iterations per epoch, 160 fine-tune epochs, λ growing by
η = 1.05 per epoch) keeps the reference's phase ratios in epochs: the
fine-tuning's lr steps sit at 50 % and 75 % of it, and λ's growth per epoch
follows from how many reference epochs one epoch of the run stands for
(:func:`scaled_eta`). λ0 is then chosen from a grid on the validation split
(:func:`select_lambda`).
"""
import math
from typing import Dict, List, Mapping, Sequence

#: The epochs of a scaled schedule that a run may override.
SCHEDULE_KEYS = ('warmup_epochs', 'finetune_epochs', 'art_max_epochs',
                 'prune_window')
#: How λ's growth is scaled (:func:`scaled_eta`).
LAMBDA_GROWTHS = ('compressed', 'per-iteration')
#: Kinds of runs whose iterations :func:`run_iterations` bounds.
RUN_KINDS = ('warmup', 'art', 'dense', 'pruning')
#: The reference's λ0, the tie-break of :func:`select_lambda`.
REFERENCE_LAMBDA = 5e-6


def finetune_milestones(finetune_epochs: int) -> List[int]:
    """lr steps at 50 % and 75 % of ``finetune_epochs`` (increasing,
    >= 1)."""
    first = max(1, round(0.5 * finetune_epochs))
    return [first, max(first + 1, round(0.75 * finetune_epochs))]


def override_epochs(schedule: Mapping, overrides: Mapping,
                    keys: Sequence[str] = SCHEDULE_KEYS) -> Dict:
    """``schedule`` with the epochs ``overrides`` (each of ``keys``, an int
    >= 1).

    Raises:
        ValueError: A key not in ``keys`` or a value that is not an int
            >= 1, naming both.
    """
    out = dict(schedule)
    for key, value in overrides.items():
        if key not in keys or not isinstance(value, int) or value < 1:
            raise ValueError(f'override_epochs: the schedule takes {tuple(keys)} '
                             f'= int >= 1, got {key}={value}')
        out[key] = value
    return out


def scaled_eta(schedule: Mapping, growth: str, iters_per_epoch: int) -> Dict:
    """λ's growth per epoch of a scaled run.

    One epoch of the run stands for ``r`` reference epochs and
    ``η = ref_eta ** r``:

    * ``'compressed'``: ``r = ref_finetune_epochs / finetune_epochs``, λ
      compressed in iterations like every phase of the run;
    * ``'per-iteration'``: ``r = iters_per_epoch / ref_iters_per_epoch``,
      the reference's growth per iteration.

    Args:
        schedule (Mapping): ``ref_eta``, ``ref_iters_per_epoch``,
            ``ref_finetune_epochs`` and ``finetune_epochs``.
        growth (str): One of :data:`LAMBDA_GROWTHS`.
        iters_per_epoch (int): Training iterations per epoch of the run.

    Returns:
        dict: ``lambda_growth``, ``ref_epochs_per_epoch`` (r),
        ``time_compression`` (reference iterations per iteration of the
        run, for λ) and ``eta``.
    """
    if growth not in LAMBDA_GROWTHS:
        raise ValueError(f'scaled_eta: growth must be one of {LAMBDA_GROWTHS}, '
                         f'got {growth!r}')
    ref_iters = schedule['ref_iters_per_epoch']
    if growth == 'compressed':
        ref_epochs = schedule['ref_finetune_epochs'] / schedule[
            'finetune_epochs']
    else:
        ref_epochs = iters_per_epoch / ref_iters
    return dict(lambda_growth=growth, ref_epochs_per_epoch=ref_epochs,
                time_compression=ref_epochs * ref_iters / iters_per_epoch,
                eta=schedule['ref_eta']**ref_epochs)


def run_iterations(schedule: Mapping, kind: str) -> float:
    """Upper bound of the training iterations of one run of ``kind``
    (:data:`RUN_KINDS`): the warm-up; an ART run at its epoch cap plus the
    fine-tuning, each ART epoch with a criterion pass (an eval forward over
    the training set, about a third of a training epoch); the dense
    fine-tuning; a pruning run (the prune window, then the fine-tuning).

    Args:
        schedule (Mapping): ``iters_per_epoch`` and the epochs of
            :data:`SCHEDULE_KEYS`.
        kind (str): One of :data:`RUN_KINDS`.
    """
    ipe = schedule['iters_per_epoch']
    ft, cap = schedule['finetune_epochs'], schedule['art_max_epochs']
    if kind == 'warmup':
        return schedule['warmup_epochs'] * ipe
    if kind == 'art':
        return (cap + ft) * ipe + cap * ipe / 3
    if kind == 'dense':
        return ft * ipe
    if kind == 'pruning':
        return (schedule['prune_window'] + ft) * ipe
    raise ValueError(f'run_iterations: kind must be one of {RUN_KINDS}, '
                     f'got {kind!r}')


def select_lambda(results: Sequence[Mapping], method: str,
                  reference: float = REFERENCE_LAMBDA) -> Dict:
    """The best λ0 of one ART variant's tuning runs on the validation split.

    Ties go to the run that switched by the criterion (not ``forced``),
    then to the λ0 closest (in log) to ``reference``.

    Args:
        results (Sequence[Mapping]): Tuning runs, each with ``method``,
            ``lambda_init``, ``val_accuracy`` and optionally ``forced``,
            ``switch_reason`` and ``art_epochs``.
        method (str): The ART variant whose runs are compared.
        reference (float): The tie-break's λ0. Defaults to
            :data:`REFERENCE_LAMBDA`.

    Returns:
        dict: ``lambda_init`` and ``val_accuracy`` of the choice and the
        ``candidates`` (λ0, validation accuracy, switch reason, ART epochs)
        by λ0.

    Raises:
        ValueError: No run of ``method``.
    """
    rows = [r for r in results if r['method'] == method]
    if not rows:
        raise ValueError(f'select_lambda: no tuning run for {method}')
    best = max(rows, key=lambda r: (r['val_accuracy'], not r.get('forced'),
                                    -abs(math.log(r['lambda_init'] / reference))))
    return dict(
        lambda_init=best['lambda_init'], val_accuracy=best['val_accuracy'],
        candidates=[
            dict(lambda_init=r['lambda_init'],
                 val_accuracy=r['val_accuracy'],
                 switch_reason=r.get('switch_reason'),
                 art_epochs=r.get('art_epochs')) for r in sorted(
                     rows, key=lambda r: r['lambda_init'])
        ])
