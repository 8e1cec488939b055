"""Scores of ART's stop criterion: the dense model against its pruned copy.

Scores are "higher is better": the accuracy in percent, or the negated loss.
The dense score is the running training score of the ART step
(``dense_reference='train'``, as the reference code) or the dense model
scored on the same batches as the pruned copy (``'eval'``).
"""
from typing import Callable, Iterable, List, Mapping, Optional, Tuple

import torch

from .arguments import check_choice

CRITERIA = ('auto', 'accuracy', 'loss')
DENSE_REFERENCES = ('train', 'eval')

#: In-place sum of a tensor over all ranks (identity on one process).
ReduceSum = Callable[[torch.Tensor], None]


def resolve_criterion(criterion: str, data) -> str:
    """'accuracy' or 'loss' for a batch: ``'auto'`` picks the accuracy when
    every data sample carries a ``gt_label``."""
    samples = data.get('data_samples') if isinstance(data, dict) else None
    has_label = bool(samples) and all(hasattr(s, 'gt_label') for s in samples)
    if criterion == 'auto':
        return 'accuracy' if has_label else 'loss'
    if criterion == 'accuracy' and not has_label:
        raise ValueError(
            "criterion='accuracy' needs data samples with gt_label "
            "(classification); use criterion='loss'")
    return criterion


def train_score(criterion: str, outputs: Optional[dict]) -> float:
    """Training score of one iteration from its loss dict: the training
    accuracy (first ``accuracy*`` key), or the task loss (the total loss
    without the ART term)."""
    outputs = outputs or {}
    if criterion == 'accuracy':
        keys = [k for k in outputs if k.startswith('accuracy')]
        if not keys:
            raise ValueError(
                "dense_reference='train' with the accuracy criterion needs "
                'the training accuracy in the loss dict (mmpretrain: '
                "head=dict(cal_acc=True)); or set dense_reference='eval' or "
                "criterion='loss'")
        return float(outputs[sorted(keys)[0]])
    if 'loss' not in outputs:
        raise ValueError('the train step returned no "loss"')
    return float(outputs['loss']) - float(outputs.get('loss_art_reg', 0.0))


class CriterionScores:
    """The criterion, its resolution and the running training score.

    Args:
        criterion (str): 'accuracy', 'loss' or 'auto'. Defaults to 'auto'.
        dense_reference (str): 'train' or 'eval'. Defaults to 'train'.
        owner (str): Prefix of run-time error messages.
            Defaults to 'ARTHook'.
    """

    def __init__(self,
                 criterion: str = 'auto',
                 dense_reference: str = 'train',
                 owner: str = 'ARTHook') -> None:
        self.criterion = check_choice('criterion', criterion, CRITERIA)
        self.dense_reference = check_choice('dense_reference',
                                            dense_reference, DENSE_REFERENCES)
        self.owner = owner
        self.resolved: Optional[str] = None
        #: Training score sum and count of the running ART step.
        self.running: List[float] = [0.0, 0.0]

    @property
    def metric_name(self) -> str:
        """'accuracy' or 'loss'."""
        return 'accuracy' if self.resolved == 'accuracy' else 'loss'

    @property
    def sign(self) -> float:
        """From a score to the metric: 1 for the accuracy, -1 for the
        loss."""
        return 1.0 if self.resolved == 'accuracy' else -1.0

    def resolve(self, data) -> str:
        """Resolve the criterion on the first batch seen."""
        if self.resolved is None:
            try:
                self.resolved = resolve_criterion(self.criterion, data)
            except ValueError as err:
                raise ValueError(f'{self.owner}: {err}') from None
        return self.resolved

    def add_train_step(self,
                       outputs: Optional[dict],
                       reduce_sum: Optional[ReduceSum] = None) -> None:
        """Add one iteration's training score. With ``reduce_sum`` (several
        ranks) the pair is summed over ranks at once, so every rank (and
        rank 0's checkpoint) holds the global partial sum of the step."""
        try:
            score = train_score(self.resolved, outputs)
        except ValueError as err:
            raise ValueError(f'{self.owner}: {err}') from None
        count = 1.0
        if reduce_sum is not None:
            pair = torch.tensor([score, 1.0], dtype=torch.float64)
            reduce_sum(pair)
            score, count = pair.tolist()
        self.running[0] += score
        self.running[1] += count

    @torch.no_grad()
    def evaluate(self,
                 model: torch.nn.Module,
                 weights: Mapping[str, torch.nn.Parameter],
                 masks: Mapping[str, torch.Tensor],
                 batches: Iterable,
                 max_batches: Optional[int],
                 score_fn: Callable[[torch.nn.Module, object],
                                    Tuple[float, float]],
                 reduce_sum: ReduceSum,
                 rank: int = 0) -> Tuple[float, float]:
        """Scores (higher is better) of the dense model and of its pruned
        copy, summed over ranks.

        The pruned copy is scored on ``batches`` (at most ``max_batches``):
        accuracy in eval mode, the loss in training mode (mmdet heads
        compute losses for training mode only) with the buffers restored
        afterwards. Both run under a fixed, forked RNG, so the training's
        random stream is untouched. The copy is made by swapping the tensors
        behind the prunable parameters, so no second model is built. The
        dense score is the running training score of the step, or
        (``dense_reference='eval'``) measured on the same batches in the
        same pass.

        Args:
            model (nn.Module): The (unwrapped) model.
            weights (Mapping[str, Parameter]): Its prunable weights.
            masks (Mapping[str, Tensor]): Keep-masks of the pruned copy.
            batches (Iterable): Batches of training data of this rank.
            max_batches (int, optional): Stop after this many batches.
            score_fn (Callable): ``(model, batch) -> (value, count)``: the
                summed score of the batch in the resolved criterion.
            reduce_sum (Callable): In-place sum over ranks.
            rank (int): This process's rank. Defaults to 0.

        Returns:
            tuple: ``(dense, pruned)`` scores.
        """
        was_training = model.training
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        weight = next(iter(weights.values()))
        devices = [weight.device] if weight.is_cuda else []
        dense_data = {n: w.data for n, w in weights.items()}
        totals = torch.zeros(4, dtype=torch.float64)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            variants = [{
                n: w.data * masks[n].to(w.device)
                for n, w in weights.items()
            }]
            if self.dense_reference == 'eval':
                variants.append(dense_data)
            try:
                for i, data in enumerate(batches):
                    if max_batches is not None and i >= max_batches:
                        break
                    model.train(self.resolve(data) == 'loss')
                    for j, tensors in enumerate(variants):
                        for n, w in weights.items():
                            w.data = tensors[n]
                        value, count = score_fn(model, data)
                        totals[2 * j] += value
                        totals[2 * j + 1] += count
            finally:
                for n, w in weights.items():
                    w.data = dense_data[n]
                for n, b in model.named_buffers():
                    b.copy_(buffers[n])
                model.train(was_training)
        return self._combine(totals, reduce_sum, rank)

    def _combine(self, totals: torch.Tensor, reduce_sum: ReduceSum,
                 rank: int) -> Tuple[float, float]:
        if self.dense_reference == 'train':
            # already summed over ranks (add_train_step): rank 0 only
            if rank == 0:
                totals[2:] = torch.tensor(self.running, dtype=torch.float64)
            self.running = [0.0, 0.0]
        reduce_sum(totals)
        if totals[1] == 0 or totals[3] == 0:
            raise RuntimeError(f'{self.owner}: no batch to score the stop '
                               'criterion on (empty training dataloader?)')
        pruned = (totals[0] / totals[1]).item()
        dense = (totals[2] / totals[3]).item()
        if self.resolved == 'accuracy':
            # the training accuracy of the loss dict is already in percent
            scale = 100.0 if self.dense_reference == 'eval' else 1.0
            return scale * dense, 100.0 * pruned
        return -dense, -pruned

    def state_dict(self) -> dict:
        """``resolved_criterion`` and ``running``."""
        return dict(
            resolved_criterion=self.resolved, running=list(self.running))

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (a checkpoint's ART state)."""
        self.resolved = state['resolved_criterion']
        self.running = list(state['running'])
