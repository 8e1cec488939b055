"""Class targets for the probes of P3B, read from a batch's data samples.

The probes are classifiers, so P3B needs class labels: per sample a
``gt_label`` (class index) or a ``gt_score`` (soft target, e.g. after
mixup), the fields of mmpretrain's data samples. Samples are read by key
(``'gt_label' in sample``, ``sample.gt_label``), so any data element with
those fields works. :class:`TargetCapture` takes them from the output of
a data preprocessor (a dict with ``data_samples``) during a train step.
"""
from typing import Optional, Sequence

import torch


def batch_targets(samples: Optional[Sequence]) -> Optional[torch.Tensor]:
    """Soft targets (B, C) if every sample has ``gt_score``, else class
    indices (B, ) if every sample has ``gt_label`` (its first entry), else
    None."""
    samples = samples or []
    if samples and all('gt_score' in s for s in samples):
        return torch.stack([s.gt_score for s in samples])
    if samples and all('gt_label' in s for s in samples):
        return torch.cat([s.gt_label.flatten()[:1] for s in samples]).long()
    return None


def check_class_labels(sample, owner: str = 'P3B', hint: str = '') -> None:
    """Raise ``ValueError`` (starting with ``owner``, ending with ``hint``)
    if one training sample (a dict with ``data_samples``, as a dataset
    returns it) has data samples without class labels. Samples in another
    form are not checked."""
    samples = sample.get('data_samples') if isinstance(sample,
                                                       dict) else None
    if isinstance(samples, (list, tuple)):
        samples = samples[0] if samples else None
    if samples is not None and hasattr(samples, 'keys') and not (
            'gt_label' in samples or 'gt_score' in samples):
        raise ValueError(
            f'{owner}: the training samples have no class labels '
            f'(gt_label / gt_score; found {type(samples).__name__} with '
            f'{sorted(samples.keys())[:8]}). ' + hint)


class TargetCapture:
    """Keeps the class targets of the batch a module (the data
    preprocessor) outputs while capturing is on.

    A forward hook on the module reads :func:`batch_targets` of every
    output dict's ``data_samples`` between :meth:`start` and :meth:`stop`,
    so only the training step's batch is kept, not a validation batch.
    """

    def __init__(self) -> None:
        self.capture = False
        self.targets: Optional[torch.Tensor] = None
        self._handle = None

    def attach(self, module: torch.nn.Module) -> None:
        """Register the forward hook on ``module``."""
        self._handle = module.register_forward_hook(self._grab)

    def remove(self) -> None:
        """Remove the forward hook (if any)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def start(self) -> None:
        """Capture the targets of the next batches (forgets older ones)."""
        self.capture = True
        self.targets = None

    def stop(self, required: bool = False,
             owner: str = 'P3B') -> Optional[torch.Tensor]:
        """Stop capturing; return the last captured targets (None if there
        were none) and forget them.

        Args:
            required (bool): Raise ``RuntimeError`` (starting with
                ``owner``) if no targets were captured (the probes trained
                on this batch). Defaults to False.
            owner (str): Start of the error message. Defaults to 'P3B'.
        """
        self.capture = False
        targets, self.targets = self.targets, None
        if required and targets is None:
            raise RuntimeError(
                f'{owner}: no class labels (gt_label / gt_score) in the '
                'batch; the probes of P3B need classification targets')
        return targets

    def _grab(self, module, args, output) -> None:
        if self.capture and isinstance(output, dict):
            targets = batch_targets(output.get('data_samples'))
            if targets is not None:
                self.targets = targets


__all__ = ['batch_targets', 'check_class_labels', 'TargetCapture']
