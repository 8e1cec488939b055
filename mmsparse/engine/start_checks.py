"""Files a run needs, checked before the runner is built.

Without them mmengine stops with a bare ``FileNotFoundError`` at the end of a
long log (environment, the whole config, model building). ``tools/train.py``
and ``tools/test.py`` call :func:`check_run_files` right after loading the
config, so a missing annotation file or checkpoint is one line that names the
config key, the file and ``docs/data_preparation.md``.
"""
import os.path as osp
from typing import Any, Iterator, List, Tuple

DATA_DOCS = 'docs/data_preparation.md'
MODES = ('train', 'test')


def is_local_path(path: Any) -> bool:
    """Whether ``path`` is a non-empty local path (not ``scheme://...``)."""
    return isinstance(path, str) and bool(path) and '://' not in path


def _walk(node: Any, key: str) -> Iterator[Tuple[str, dict]]:
    """``(key, dict)`` of every dict in a config tree, with its dotted key."""
    if isinstance(node, dict):
        yield key, node
        for k, v in node.items():
            yield from _walk(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{key}.{i}')


def pretrained_checkpoints(model_cfg: Any) -> List[Tuple[str, str]]:
    """``(key, path)`` of every ``init_cfg=dict(type='Pretrained')`` checkpoint
    in a model config (``key`` as in ``--cfg-options``)."""
    return [(f'{key}.checkpoint', node['checkpoint'])
            for key, node in _walk(model_cfg, 'model')
            if node.get('type') == 'Pretrained' and 'checkpoint' in node]


def annotation_files(loader_cfg: Any, name: str) -> List[Tuple[str, str]]:
    """``(key, path)`` of every ``ann_file`` of the datasets of a dataloader
    config, joined with the ``data_root`` beside it as mmengine does."""
    found = []
    for key, node in _walk(loader_cfg, name):
        ann_file = node.get('ann_file')
        if not is_local_path(ann_file):
            continue
        data_root = node.get('data_root')
        if not osp.isabs(ann_file) and isinstance(data_root, str) and data_root:
            ann_file = osp.join(data_root, ann_file)
        found.append((f'{key}.ann_file', ann_file))
    return found


def missing_run_files(cfg: Any, mode: str) -> List[Tuple[str, str, str]]:
    """Local files the run of ``cfg`` reads that do not exist.

    ``mode`` 'train' checks the train (and, with ``val_cfg``, val) datasets'
    annotation files, the model's pre-trained checkpoints and ``load_from``;
    'test' the test dataset's annotation files and ``load_from``.

    Returns:
        list[tuple[str, str, str]]: ``(config key, path, kind)`` with kind
        'annotation file' or 'checkpoint'.
    """
    if mode not in MODES:
        raise ValueError(f'missing_run_files: mode must be one of {MODES}, got {mode!r}')
    files = []
    if mode == 'train':
        loaders = ['train_dataloader']
        if cfg.get('val_cfg') is not None:
            loaders.append('val_dataloader')
    else:
        loaders = ['test_dataloader']
    for name in loaders:
        if cfg.get(name) is not None:
            files += [(key, path, 'annotation file')
                      for key, path in annotation_files(cfg[name].get('dataset'),
                                                        f'{name}.dataset')]
    if mode == 'train':
        files += [(key, path, 'checkpoint')
                  for key, path in pretrained_checkpoints(cfg.get('model'))]
    if cfg.get('load_from') is not None:
        files.append(('load_from', cfg.load_from, 'checkpoint'))
    seen, missing = set(), []
    for key, path, kind in files:
        if is_local_path(path) and path not in seen and not osp.isfile(osp.expanduser(path)):
            seen.add(path)
            missing.append((key, path, kind))
    return missing


def check_run_files(cfg: Any, mode: str) -> None:
    """Raise a one-line ``FileNotFoundError`` naming the first missing file.

    Args:
        cfg (Config | dict): The run's config (after ``--cfg-options``).
        mode (str): 'train' or 'test' (see :func:`missing_run_files`).
    """
    missing = missing_run_files(cfg, mode)
    if not missing:
        return
    key, path, kind = missing[0]
    more = f' (and {len(missing) - 1} more missing file(s))' if len(missing) > 1 else ''
    if kind == 'annotation file':
        hint = (f'{DATA_DOCS} explains how to download and convert YouTube-VIS or make '
                'the toy set')
    else:
        hint = f'{DATA_DOCS} ("Checkpoints") says where to get it'
    raise FileNotFoundError(f'{kind} not found: {key}={path!r}{more}; {hint}')
