"""What ART reports: the settings line, the phase events, the log line and
scalars of an ART step, and the warning when the regularizer's gradient
outgrows gradient clipping."""
from typing import Dict, Optional

#: Warned when a run ends before the switch to fine-tuning.
NEVER_PRUNED = ('the run ended in the ART phase; the model was never pruned '
                '(raise max_epochs/max_iters, set max_art_steps or '
                'min_finetune)')


def settings_line(art) -> str:
    """The settings of an :class:`~mmsparse.art.controller.ARTController`,
    logged before training: ``'phase warmup, κ=0.9, regularizer hypersparse,
    λ0=5e-06, η=1.05'``."""
    return (f'phase {art.phases.phase}, κ={art.target_sparsity}, regularizer '
            f'{art.regularizer}, λ0={art.phases.lambda_init:g}, '
            f'η={art.phases.eta}')


def event_line(event: str, completed: int, unit: str, lambda_init: float,
               max_finetune: Optional[int]) -> str:
    """The log line of a phase event of
    :meth:`~mmsparse.art.phases.ARTPhases.advance`: ``'art_begins'`` or
    ``'finetune_done'``."""
    if event == 'art_begins':
        return (f'warm-up done after {completed} {unit}s; ART starts '
                f'(λ0={lambda_init:g})')
    if event == 'finetune_done':
        return f'{max_finetune} fine-tune {unit}s done; stopping the run'
    raise ValueError(f'no log line for the event {event!r}')


def step_line(record: dict, metric: str, unit: str, completed: int,
              kappa: float) -> str:
    """One ART step's record (:meth:`~mmsparse.art.phases.ARTPhases.step`)
    as a log line: ``'step 3 (epoch 7): λ=... dense accuracy=... pruned@90%
    accuracy=... window mean=... best mean=... (step 2) hs_gain=...'``."""
    return (f'step {record["step"]} ({unit} {completed}): '
            f'λ={record["lambda"]:.4g} dense {metric}={record["dense"]:.4f} '
            f'pruned@{100 * kappa:g}% {metric}={record["pruned"]:.4f} '
            f'window mean={record["window_mean"]:.4f} best mean='
            f'{record["best_mean"]:.4f} (step {record["best_step"]}) '
            f'hs_gain={record["hs_gain"]:.3f}')


def switch_line(unit: str, completed: int, reason: str, model_step: int,
                sparsity: float) -> str:
    """The log line of the switch to fine-tuning."""
    return (f'switch to fine-tuning after {unit} {completed} ({reason}); '
            f'pruned model of ART step {model_step}, sparsity '
            f'{100 * sparsity:.3f}%, masks fixed')


def step_scalars(record: dict, metric: str) -> Dict[str, float]:
    """The scalars of one ART step: ``art/lambda``, ``art/dense_<metric>``,
    ``art/pruned_<metric>``, ``art/window_mean_<metric>``,
    ``art/hs_gain``."""
    return {
        'art/lambda': record['lambda'],
        f'art/dense_{metric}': record['dense'],
        f'art/pruned_{metric}': record['pruned'],
        f'art/window_mean_{metric}': record['window_mean'],
        'art/hs_gain': record['hs_gain'],
    }


class ClipWatch:
    """Warns once when ``λ·‖∇R‖`` exceeds the gradient clipping norm (from
    then on clipping scales the task gradient down with the regularizer's).

    Args:
        clip_norm (float, optional): ``max_norm`` of gradient clipping; None:
            no clipping, never warns.
    """

    def __init__(self, clip_norm: Optional[float] = None) -> None:
        self.clip_norm = clip_norm
        self.warned = False

    def check(self, reg_grad: float) -> Optional[str]:
        """The warning for ``reg_grad = λ·‖∇R‖`` the first time it exceeds
        the norm, else None."""
        if self.clip_norm is None or self.warned or \
                not reg_grad > self.clip_norm:
            return None
        self.warned = True
        return (f'λ·‖∇R‖ = {reg_grad:.4g} exceeds the gradient clipping norm '
                f'{self.clip_norm:g}: clipping now scales the task gradient '
                'down with the regularizer\'s')
