"""When P3B acts: the pruning schedule and the probe training window.

Iterations are 0-based. Statistics accumulate from ``start``; the keep
ratios ramp to the goal at ``sparse``; masks are hard and the model is
sliced after iteration ``final - 1``. Masks are rebuilt every ``interval``
iterations in between.
"""
from typing import Optional, Tuple


def check_schedule(start: int, sparse: int, final: int, interval: int,
                   unit: str = 'iterations', owner: str = 'P3B') -> None:
    """Validate the pruning schedule (raises ``ValueError`` starting with
    ``owner``)."""
    for name, value in (('prune_start', start), ('prune_sparse', sparse),
                        ('prune_finalize', final)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f'{owner}: {name} must be an int >= 0, got '
                             f'{value!r}')
    if not start <= sparse <= final:
        raise ValueError(
            f'{owner}: needs prune_start <= prune_sparse <= prune_finalize, '
            f'got {start}, {sparse}, {final} ({unit}); the prune start must '
            'not come after the finalize step')
    if final == start:
        raise ValueError(f'{owner}: prune_finalize ({final}) must come after '
                         f'prune_start ({start}) ({unit})')
    if not isinstance(interval, int) or interval < 1:
        raise ValueError(f'{owner}: update_interval must be an int >= 1, got '
                         f'{interval!r}')


def check_schedule_args(start: int, sparse: int, final: Optional[int],
                        interval: int, by_epoch: bool,
                        owner: str = 'P3B') -> None:
    """Validate a schedule given in epochs (``by_epoch``) or iterations
    before the run is known (raises ``ValueError`` starting with
    ``owner``). ``final`` None (the end of training, checked against the
    run by :func:`schedule_in_iterations`) is checked as ``sparse`` here,
    so it needs ``start < sparse``."""
    unit = 'epochs' if by_epoch else 'iterations'
    if final is None and isinstance(start, int) and \
            isinstance(sparse, int) and 0 <= sparse <= start:
        raise ValueError(
            f'{owner}: prune_sparse ({sparse}) must come after prune_start '
            f'({start}) ({unit}) when prune_finalize is None (the end of '
            'training)')
    check_schedule(start, sparse, sparse if final is None else final,
                   interval, unit, owner)


def schedule_in_iterations(start: int, sparse: int, final: Optional[int],
                           interval: int, by_epoch: bool,
                           iters_per_epoch: int, train_length: int,
                           owner: str = 'P3B') -> Tuple[int, int, int]:
    """The schedule of a training run in iterations.

    Args:
        start (int): ``prune_start`` in epochs (``by_epoch``) or
            iterations.
        sparse (int): ``prune_sparse``, same unit.
        final (int, optional): ``prune_finalize``, same unit; None = the end
            of training.
        interval (int): Iterations between mask updates.
        by_epoch (bool): The three above are epochs.
        iters_per_epoch (int): Iterations of one epoch (used when
            ``by_epoch``).
        train_length (int): Length of the training run in the same unit
            (max epochs or max iterations).
        owner (str): Start of the error messages. Defaults to 'P3B'.

    Returns:
        tuple[int, int, int]: start, sparse and final iteration.
    """
    unit = 'epochs' if by_epoch else 'iterations'
    if final is None:
        final = train_length
    if final > train_length:
        raise ValueError(
            f'{owner}: prune_finalize={final} {unit} is after the end of '
            f'training ({train_length} {unit}); lower prune_finalize or train '
            'longer')
    check_schedule(start, sparse, final, interval, unit, owner)
    scale = iters_per_epoch if by_epoch else 1
    return start * scale, sparse * scale, final * scale


def in_probe_window(step: int, start: int, interval: int, final: int,
                    window: Optional[int]) -> bool:
    """Whether probes with a ``window`` (None = always) train at ``step``:
    the last ``window`` steps before each mask update (at
    ``start + k * interval - 1``) and before the finalize step
    (``final - 1``)."""
    if step >= final:
        return False
    if window is None:
        return True
    if step < start:
        event = start + interval - 1
    else:
        event = start + ((step - start) // interval + 1) * interval - 1
    return min(event, final - 1) - step < window


def is_update_step(step: int, start: int, interval: int, final: int) -> bool:
    """Whether the masks are rebuilt (not finalized) after ``step``."""
    return (start <= step and (step - start + 1) % interval == 0
            and step + 1 < final)


__all__ = [
    'check_schedule', 'check_schedule_args', 'schedule_in_iterations',
    'in_probe_window', 'is_update_step'
]
