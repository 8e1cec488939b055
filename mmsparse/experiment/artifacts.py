"""What a row's training leaves in its work dir, read back for its result:
the checkpoint's weights digest (and the rows whose checkpoint another
machine lacks, :class:`CheckpointStages`), a pruning hook's state (masks,
switch) and the scalars mmengine logged."""
import glob
import hashlib
import json
import os.path as osp
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)


def weights_digest(checkpoint: str) -> str:
    """SHA-256 of a checkpoint's model weights (names and bytes, sorted):
    tells whether a re-run stage reproduced the weights of the first run."""
    import torch
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def weight_sparsity(weights: Mapping[str, Any]) -> Dict:
    """``prunable_weights`` (elements), ``zero_weights`` and
    ``final_sparsity`` (their share) of the tensors ``weights``."""
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    return dict(prunable_weights=total, zero_weights=zeros,
                final_sparsity=zeros / total)


def pruning_state(checkpoint: str, state_key: str) -> Tuple[Dict, Dict]:
    """A pruning hook's state in a checkpoint and the sparsity it made.

    Args:
        checkpoint (str): The final checkpoint of a row.
        state_key (str): The checkpoint key of the hook's state (e.g.
            ``'art_state'``).

    Returns:
        tuple: The state and ``sparsity`` (pruned share of the masks),
        ``zero_share`` (zero weights under the masks, of the saved
        weights), ``prunable_weights``, ``pruned_weights`` and
        ``zero_weights``.

    Raises:
        RuntimeError: The checkpoint has no masks under ``state_key`` (the
            run never pruned).
    """
    import torch
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = ckpt.get(state_key)
    if state is None or state.get('masks') is None:
        raise RuntimeError(f'{checkpoint}: no masks under "{state_key}": the '
                           'run never pruned')
    masks = state['masks']
    weights = ckpt['state_dict']
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    zeros = sum(int((weights[n] == 0).sum()) for n in masks)
    return state, dict(sparsity=(total - kept) / total,
                       zero_share=zeros / total, prunable_weights=total,
                       pruned_weights=total - kept, zero_weights=zeros)


def logged_scalars(work_dir: str, required: str,
                   keys: Sequence[str]) -> List[Dict]:
    """The entries of mmengine's ``vis_data/scalars.json`` (of every run in
    ``work_dir``: a resumed training has one per start) that hold
    ``required`` and ``iter``: ``iter`` and ``keys`` (None where missing)
    per iteration, sorted; a later run's entry replaces an earlier one of
    the same iteration."""
    points = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if required in entry and 'iter' in entry:
                    points[entry['iter']] = dict(
                        iter=entry['iter'], **{k: entry.get(k) for k in keys})
    return [points[k] for k in sorted(points)]


class CheckpointStages:
    """Rows whose result file is kept (a tracked results folder) and whose
    checkpoint is not (a work dir, which another machine lacks), e.g. a
    warm-up that later rows of its seed start from.

    Such a row is done when its file *and* its checkpoint exist
    (:meth:`todo`); without the checkpoint it runs again, and the digest of
    the new weights is compared with the first run's (:meth:`stamp`): the
    rows finished from the first checkpoint pair exactly with new ones only
    when they are equal.

    Args:
        store (RowStore): The row files.
        checkpoint (callable): ``checkpoint(row) -> path``, None for rows
            without a checkpoint of this kind (done by their file alone).
        tag (str): Word in brackets that opens the messages. Defaults to
            'stage'.
        what (str): What the row is called in the messages. Defaults to
            'stage'.
        key (str): Row field of the digest. Defaults to 'weights_sha256'.
    """

    def __init__(self, store: Any, checkpoint: Callable[[dict], Optional[str]],
                 tag: str = 'stage', what: str = 'stage',
                 key: str = 'weights_sha256') -> None:
        self.store = store
        self.checkpoint = checkpoint
        self.tag = tag
        self.what = what
        self.key = key

    def previous(self, row: dict) -> Dict:
        """The row's finished result, {} when it has none."""
        name = row['name']
        return self.store.read(name) if self.store.done(name) else {}

    def todo(self, row: dict) -> bool:
        """Whether the row must run: it has no file, or its checkpoint is
        missing. A file without the digest gets it from the checkpoint."""
        name = row['name']
        if not self.store.done(name):
            return True
        ckpt = self.checkpoint(row)
        if ckpt is None:
            return False
        if osp.exists(ckpt):
            previous = self.store.read(name)
            if self.key not in previous:
                previous[self.key] = weights_digest(ckpt)
                self.store.write(name, previous)
            return False
        print(f'[{self.tag}] {name}: {ckpt} is missing (new work dir?); '
              f'running the {self.what} again', flush=True)
        return True

    def run(self, run_one: Callable[[dict], Dict], row: dict) -> Dict:
        """``run_one(row)``, stamped (:meth:`stamp`) against the row's
        result before the run; pickles with a module-level ``run_one``
        (``functools.partial(stages.run, run_one)`` for worker
        processes)."""
        previous = self.previous(row)
        return self.stamp(row, run_one(row), previous)

    def stamp(self, row: dict, result: Dict, previous: Dict) -> Dict:
        """Add the digest of the row's new checkpoint to ``result`` and,
        when ``previous`` (the result before the run) had one,
        ``reproduces_previous``; warns when it did not. Returns
        ``result``."""
        ckpt = self.checkpoint(row)
        if ckpt is None:
            return result
        result[self.key] = weights_digest(ckpt)
        old = previous.get(self.key)
        if old is not None:
            result['reproduces_previous'] = old == result[self.key]
            if not result['reproduces_previous']:
                print(f"[{self.tag}] WARNING {row['name']}: the re-run "
                      f'{self.what} differs from the one the finished rows '
                      'of this seed used (weights digest); their pairing '
                      'with new rows is no longer exact', flush=True)
        return result
