"""Training batches for ART's stop criterion, and their score, through the
OpenMMLab runner and model API (the scoring loop itself is plain PyTorch:
:class:`mmsparse.art.CriterionScores`)."""
from typing import Tuple

import torch
from mmengine.dataset import DefaultSampler
from torch.utils.data import DataLoader


def build_criterion_loader(runner) -> DataLoader:
    """A private loader over the training set for the criterion.

    Own sampler (fixed seed, sharded over ranks) and plain batching:
    iterating the training loader itself would reset its persistent workers
    and stateful batch samplers under an iteration-based loop.
    """
    src = runner.train_dataloader
    batch_size = (getattr(src.batch_sampler, 'batch_size', None)
                  or src.batch_size or 1)
    sampler = DefaultSampler(src.dataset, shuffle=True, seed=0)
    return DataLoader(
        src.dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=src.num_workers,
        collate_fn=src.collate_fn,
        worker_init_fn=src.worker_init_fn)


def score_batch(model, data, criterion: str) -> Tuple[float, float]:
    """``(summed score, count)`` of one batch: with ``criterion='accuracy'``
    the correct top-1 predictions of ``model.test_step`` (data samples with
    ``pred_label``/``gt_label``) and the number of samples, else the loss of
    ``model(..., mode='loss')`` (``model.parse_losses``) and 1."""
    if criterion == 'accuracy':
        samples = model.test_step(data)
        pred = torch.stack([s.pred_label.flatten()[0] for s in samples])
        gt = torch.stack([s.gt_label.flatten()[0] for s in samples])
        return float((pred.cpu() == gt.cpu()).sum()), float(len(samples))
    data = model.data_preprocessor(data, True)
    if isinstance(data, dict):
        losses = model(**data, mode='loss')
    else:
        losses = model(*data, mode='loss')
    loss, _ = model.parse_losses(losses)
    return float(loss), 1.0
