"""Checkpoint state of a :class:`~mmsparse.p3b.pruner.P3BPruner`.

Everything a resumed run needs (gates, statistics, EMA, goal keep ratios,
history, probes and their optimizer) as a dict of plain values and CPU
tensors; the engine's ``P3BHook`` stores it under the checkpoint key
``'p3b'``. The format is unchanged since the first P3B checkpoints, so
checkpoints written by earlier versions resume.
"""
from typing import Callable, Dict, Optional

import torch

from .statistics import copy_stats, load_stats

#: Message end of every "cannot resume" error.
RESUME_HINT = ('; to start a new pruning run from its weights, load it '
               'with load_from and resume=False')


def pruner_state(pruner) -> dict:
    """Everything a resumed run needs, as a checkpoint-friendly dict (CPU
    tensors)."""
    cpu = torch.device('cpu')
    last = pruner.last_stats
    state = dict(
        schedule=list(pruner.schedule()),
        keep_ratio=pruner.keep_ratio,
        probe=pruner.probe_design,
        block_budget=pruner.block_budget,
        gates={k: g.detach().cpu().clone()
               for k, g in pruner.gated.gates.items()},
        stats=copy_stats(pruner, cpu),
        last_stats=None if last is None else {
            k: ({n: t.cpu() for n, t in v.items()} if isinstance(
                v, dict) else v.cpu())
            for k, v in last.items()},
        ema=None if pruner.ema is None else pruner.ema.clone(),
        goal_keep=pruner.goal_keep.clone(),
        finalized=pruner.finalized,
        num_updates=pruner.num_updates,
        history=list(pruner.history))
    if pruner.probes is not None:
        state['probes'] = pruner.probes.state_dict()
        state['probe_optim'] = pruner.probe_optim.state_dict()
        state['subset_gen'] = pruner.subset_gen.get_state()
    return state


def check_state(pruner, state: dict, owner: str) -> None:
    """Raise ``ValueError`` (starting with ``owner``) if ``state`` comes
    from a run with another keep ratio, schedule, probe design, block budget
    or model than ``pruner``."""
    if abs(float(state['keep_ratio']) - pruner.keep_ratio) > 1e-12:
        raise ValueError(
            f'{owner}: cannot resume: the checkpoint was written with '
            f'keep_ratio={state["keep_ratio"]}, this run has '
            f'keep_ratio={pruner.keep_ratio}{RESUME_HINT}')
    if tuple(state['schedule']) != pruner.schedule():
        raise ValueError(
            f'{owner}: cannot resume: the checkpoint was written with '
            'schedule (start, sparse, final, interval) = '
            f'{list(state["schedule"])} iterations, this run has '
            f'{list(pruner.schedule())}{RESUME_HINT}')
    if state.get('probe', 'reference') != pruner.probe_design:
        raise ValueError(
            f'{owner}: cannot resume: the checkpoint was written with '
            f'probe={state.get("probe", "reference")!r}, this run has '
            f'probe={pruner.probe_design!r}{RESUME_HINT}')
    if state.get('block_budget', pruner.block_budget) != pruner.block_budget:
        raise ValueError(
            f'{owner}: cannot resume: the checkpoint was written with '
            f'block_budget={state["block_budget"]!r}, this run has '
            f'block_budget={pruner.block_budget!r}{RESUME_HINT}')
    if set(state['gates']) != set(pruner.gated.gates):
        raise ValueError(f'{owner}: the checkpoint gates do not match '
                         'the model (different number of blocks?)')


def _last_stats_to(last: Optional[Dict], device) -> Optional[Dict]:
    if last is None:
        return None
    last = dict(last)
    last['taylor'] = {k: torch.as_tensor(v).to(device)
                      for k, v in last['taylor'].items()}
    for key in ('benefit_sum', 'benefit_count', 'taylor_count'):
        last[key] = torch.as_tensor(last[key],
                                    dtype=torch.float64).to(device)
    return last


def load_state(pruner, state: dict) -> None:
    """Restore :func:`pruner_state` output into ``pruner`` (checked first
    with :func:`check_state`). Gates that were in use are active right
    away, so the model evaluates pruned before any training iteration."""
    check_state(pruner, state, type(pruner).__name__)
    with torch.no_grad():
        for k, g in pruner.gated.gates.items():
            g.copy_(state['gates'][k])
    load_stats(pruner, state['stats'])
    pruner.last_stats = _last_stats_to(state['last_stats'], pruner.device)
    pruner.ema = state['ema']
    pruner.goal_keep = state['goal_keep'].clone()
    pruner.finalized = bool(state['finalized'])
    pruner.num_updates = int(state['num_updates'])
    pruner.history = list(state['history'])
    pruner.gated.active = pruner.finalized or pruner.num_updates > 0
    if pruner.finalized:
        pruner.drop_probes()
    elif pruner.probes is not None and 'probes' in state:
        pruner.probes.load_state_dict(state['probes'])
        pruner.probe_optim.load_state_dict(state['probe_optim'])
        if 'subset_gen' in state:
            pruner.subset_gen.set_state(state['subset_gen'])


def restore_loaded_state(pruner, state: Optional[dict],
                         ckpt_iter: Optional[int], cur_iter: int,
                         info: Callable[[str], None],
                         warning: Callable[[str], None],
                         owner: str) -> None:
    """Restore the P3B state of a loaded checkpoint if the run resumed it.

    A resumed run continues the train loop at the checkpoint's iteration
    (``cur_iter == ckpt_iter > 0``) and gets the state back (checked first:
    the same keep ratio and schedule only); a run that only loaded the
    weights (``load_from``, starting at 0) prunes anew from dense gates.

    Args:
        pruner (P3BPruner): The pruner to restore.
        state (dict, optional): The checkpoint's P3B state (None: it has
            none).
        ckpt_iter (int, optional): The checkpoint's iteration.
        cur_iter (int): The iteration the run continues at.
        info (callable): Logs an info message.
        warning (callable): Logs a warning.
        owner (str): Start of the messages and errors.
    """
    if not (cur_iter > 0 and cur_iter == ckpt_iter):
        if state is not None:
            info(f'{owner}: load_from loads the weights only; the P3B state '
                 f'of that run (keep_ratio {state["keep_ratio"]}) is not '
                 'restored and pruning starts from dense gates (use '
                 'resume=True to continue that run)')
    elif state is None:
        warning(f'{owner}: the checkpoint has no P3B state; pruning starts '
                'from dense gates')
    else:
        pruner.check_state(state, owner)
        pruner.set_state(state)
        info(f'{owner}: restored gates, scores, EMA and schedule from the '
             'checkpoint')


__all__ = [
    'RESUME_HINT', 'pruner_state', 'check_state', 'load_state',
    'restore_loaded_state'
]
