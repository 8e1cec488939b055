"""Warn when a fine-tuning config starts training from no checkpoint."""
from mmengine.hooks import Hook

from mmsparse.registry import HOOKS


@HOOKS.register_module()
class LoadFromCheckHook(Hook):
    """Warns (or stops) when a fine-tuning config trains from no checkpoint.

    Configs whose recipe fine-tunes a trained model (VPP's sparse fine-tuning
    of the dense model) ship ``load_from=None`` because the checkpoint is the
    user's; started as they are, they train from an untrained model without
    complaint. Before training, unless the run resumes, this hook logs one
    warning line (``action='warn'``) or raises a ``ValueError``
    (``action='error'``) that names ``load_from``.

    Args:
        reason (str): What the config expects to start from, for the message.
            Defaults to 'this config fine-tunes a trained model'.
        action (str): 'warn' or 'error'. Defaults to 'warn'.

    Example:
        >>> custom_hooks = [dict(type='LoadFromCheckHook',
        ...                      reason='VPP fine-tunes the dense model')]
    """

    ACTIONS = ('warn', 'error')
    priority = 'VERY_HIGH'

    def __init__(self,
                 reason: str = 'this config fine-tunes a trained model',
                 action: str = 'warn') -> None:
        if action not in self.ACTIONS:
            raise ValueError(f'{type(self).__name__}: action must be one of '
                             f'{self.ACTIONS}, got {action!r}')
        if not isinstance(reason, str) or not reason:
            raise ValueError(f'{type(self).__name__}: reason must be a non-empty string, '
                             f'got {reason!r}')
        self.reason = reason
        self.action = action

    def message(self, runner) -> str:
        """The warning for ``runner``, or '' when it starts from a checkpoint."""
        if runner.cfg.get('load_from', None) is not None or runner.cfg.get('resume', False):
            return ''
        return (f'{type(self).__name__}: training starts from no checkpoint (load_from=None), '
                f'but {self.reason}; set load_from to its checkpoint '
                '(--cfg-options load_from=PATH)')

    def before_train(self, runner) -> None:
        """Check ``load_from`` / ``resume`` of the run."""
        message = self.message(runner)
        if not message:
            return
        if self.action == 'error':
            raise ValueError(message)
        runner.logger.warning(message)
