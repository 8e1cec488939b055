"""Class targets for the probes of P3B, read from a batch's data samples.

The probes are classifiers, so P3B needs class labels: per sample a
``gt_label`` (class index) or a ``gt_score`` (soft target, e.g. after
mixup), the fields of mmpretrain's data samples. Samples are read by key
(``'gt_label' in sample``, ``sample.gt_label``), so any data element with
those fields works.
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


__all__ = ['batch_targets', 'check_class_labels']
