"""Stages of the classification comparisons that train in the Python
process (an mmengine ``Runner`` per stage, the configs changed in code):
overrides applied to every config that has them, a run of some epochs, its
training timed (wall and CPU seconds), the validation curve it logged. The
per-image correctness of such a run is
:func:`mmsparse.experiment.items.image_correctness` (checked against
``runner.test()``: :func:`mmsparse.experiment.items.tested_correctness`)."""
import glob
import json
import os.path as osp
import time
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .options import MISSING, child_of, lookup_key


def parent_of(cfg: Any, key: str) -> Optional[Tuple[Any, str]]:
    """The node that holds the dotted ``key`` in ``cfg`` (digits index
    lists) and the key's last part, or None when the node is not there."""
    *path, last = key.split('.')
    node = cfg
    for part in path:
        node = child_of(node, part)
        if node is MISSING or (not hasattr(node, 'keys')
                               and not isinstance(node, list)):
            return None
    return node, last


def apply_options(cfg: Any, options: Mapping[str, Any]) -> Any:
    """Set every dotted key of ``options`` (parsed ``--cfg-options``) in
    ``cfg`` where the node that holds it exists (an option of another
    config of the comparison is skipped here); returns ``cfg``."""
    for key, value in options.items():
        found = parent_of(cfg, key)
        if found is not None:
            node, last = found
            node[int(last) if isinstance(node, list) else last] = value
    return cfg


def check_options(options: Mapping[str, Any], configs: Mapping[str, Any],
                  reserved: Sequence[str] = (), reserved_hint: str = ''
                  ) -> Optional[str]:
    """Error text for options :func:`apply_options` would not use, else
    None: a key the driver sets itself (``reserved`` and their sub-keys),
    or one that is in none of ``configs`` (path -> config: a typo)."""
    for key in options:
        if any(key == r or key.startswith(r + '.') for r in reserved):
            return (f'--cfg-options {key}: set by the script itself'
                    + (f'; {reserved_hint}' if reserved_hint else ''))
        if all(lookup_key(cfg, key) for cfg in configs.values()):
            return (f'--cfg-options {key}: in none of the configs '
                    f'({", ".join(configs)}); check the spelling')
    return None


def set_epochs(cfg: Any, epochs: int, val_interval: Optional[int] = None,
               log_interval: int = 50) -> None:
    """Train ``cfg`` for ``epochs`` epochs, validate every ``val_interval``
    (default: at the end), keep one checkpoint (the last) and log every
    ``log_interval`` iterations."""
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = val_interval or epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook',
                                    interval=log_interval)


def dataset_size(cfg: Any, dataloader: str = 'train_dataloader') -> int:
    """Samples of the dataset of ``cfg``'s ``dataloader``, built in the
    config's registry scope (whatever scope the caller initialised)."""
    from mmengine.registry import DefaultScope

    import mmsparse  # noqa: F401
    from mmsparse.registry import DATASETS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        return len(DATASETS.build(cfg[dataloader].dataset))


def build_runner(cfg: Any, work_dir: str, name: str) -> Any:
    """An mmengine ``Runner`` of ``cfg`` in ``work_dir``, its logs named
    ``name``."""
    from mmengine.runner import Runner
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    return Runner.from_cfg(cfg)


class Clock:
    """Wall and CPU seconds (of this process) since it was made."""

    def __init__(self) -> None:
        self.start, self.cpu_start = time.time(), time.process_time()

    def wall(self) -> float:
        """Wall seconds since the start."""
        return time.time() - self.start

    def cpu(self) -> float:
        """CPU seconds of this process since the start."""
        return time.process_time() - self.cpu_start


def train_in_process(cfg: Any, work_dir: str, name: str) -> Tuple[Any, Clock]:
    """Build the ``Runner`` of ``cfg`` (:func:`build_runner`) and train it
    in this process.

    Returns:
        tuple: The trained runner (score it, e.g. with
        :func:`~mmsparse.experiment.items.tested_correctness`) and the
        :class:`Clock` started before the runner was built (read it when
        the row's work is done).
    """
    clock = Clock()
    runner = build_runner(cfg, work_dir, name)
    runner.train()
    return runner, clock


def val_curve(work_dir: str, metric: str = 'accuracy/top1') -> List:
    """``(epoch, metric)`` of the validations logged in ``work_dir``
    (mmengine's ``vis_data/scalars.json`` of every run there)."""
    out = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if metric in rec:
                    out.append((rec.get('epoch', rec.get('step')),
                                rec[metric]))
    return out
