"""A step learning-rate schedule whose milestones follow the length of the run."""
from typing import Sequence

from mmengine.optim.scheduler import MultiStepLR
from mmengine.optim.scheduler.param_scheduler import INF
# mmengine's root registry: resolves under default_scope mmdet and mmpretrain.
from mmengine.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class RelativeMultiStepLR(MultiStepLR):
    """``MultiStepLR`` with milestones given as fractions of the schedule's span.

    ``MultiStepLR(milestones=[5500], end=8000)`` keeps decaying at iteration
    5500 when a run is shortened with ``--cfg-options train_cfg.max_iters=80``,
    i.e. never. Here the milestones are fractions of ``end - begin``: leave
    ``end`` out of the config and the runner sets it to the run length
    (``train_cfg.max_iters``, or ``max_epochs`` with ``by_epoch=True``), so the
    decay moves with it. Milestone ``f`` becomes step ``round(f * (end - begin))``
    counted from ``begin``, as ``MultiStepLR`` counts its milestones.

    Example:
        >>> param_scheduler = dict(type='RelativeMultiStepLR', by_epoch=False,
        ...                        milestone_fractions=[0.8], gamma=0.1)
        >>> # max_iters=300 -> decay at 240; max_iters=80 -> decay at 64

    Args:
        optimizer (Optimizer | OptimWrapper): Wrapped optimizer.
        milestone_fractions (Sequence[float]): Increasing fractions of the span,
            each in (0, 1).
        gamma (float): Factor of each decay. Defaults to 0.1.
        begin (int): First step of the schedule. Defaults to 0.
        end (int): Step where it ends; must be finite. Defaults to ``INF``, which
            the runner replaces by the run length when ``end`` is not in the
            config.
        last_step (int): The index of the last step, for resuming. Defaults to -1.
        by_epoch (bool): Step per epoch (True) or per iteration. Defaults to True.
        verbose (bool): Print the value at each update. Defaults to False.
    """

    def __init__(self,
                 optimizer,
                 milestone_fractions: Sequence[float],
                 gamma: float = 0.1,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False) -> None:
        fractions = list(milestone_fractions)
        if not fractions or any(not 0. < f < 1. for f in fractions) or \
                fractions != sorted(fractions):
            raise ValueError('RelativeMultiStepLR: milestone_fractions must be increasing '
                             f'fractions in (0, 1), got {milestone_fractions}')
        if end >= INF:
            raise ValueError('RelativeMultiStepLR: end must be finite: leave it out of the '
                             'config and the runner sets it to train_cfg.max_iters (or '
                             'max_epochs), or give it explicitly')
        if end <= begin:
            raise ValueError(f'RelativeMultiStepLR: end must be > begin, got begin={begin}, '
                             f'end={end}')
        self.milestone_fractions = fractions
        milestones = [int(round(f * (end - begin))) for f in fractions]
        super().__init__(
            optimizer,
            milestones=milestones,
            gamma=gamma,
            last_step=last_step,
            begin=begin,
            end=end,
            by_epoch=by_epoch,
            verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls,
                              *args,
                              begin: int = 0,
                              end: int = INF,
                              by_epoch: bool = True,
                              epoch_length: int = None,
                              **kwargs):
        """Build an iteration-based schedule from an epoch-based config."""
        if not by_epoch or not epoch_length or epoch_length <= 0:
            raise ValueError('RelativeMultiStepLR: convert_to_iter_based needs by_epoch=True '
                             f'and epoch_length > 0, got by_epoch={by_epoch}, '
                             f'epoch_length={epoch_length}')
        begin = int(begin * epoch_length)
        if end != INF:
            end = int(end * epoch_length)
        return cls(*args, begin=begin, end=end, by_epoch=False, **kwargs)
