"""Stages of a row that a driver keeps in its work dir, each finished when
its output file exists: a training up to its final checkpoint, a test whose
metrics are kept, a sparse export; the seconds of every stage; and the
finished stages of another work dir linked into this one.

A rerun skips every stage whose file exists, so a killed run continues with
the first unfinished stage; the seconds of the stages are kept in a JSON
file (:class:`StageTimes`), so that a resumed run still knows what its
skipped stages cost.
"""
import glob
import io
import json
import os
import os.path as osp
import sys
from typing import (Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

from .store import atomic_write_json, cached_json

Run = Callable[[Sequence[str], str], float]


class StageTimes(dict):
    """Seconds per stage (to 0.1 s), kept in a JSON file that is written
    again (atomically) on every change.

    Args:
        path (str): The file; read when it exists.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        if osp.exists(path):
            with open(path) as f:
                self.update(json.load(f))

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, round(value, 1))
        atomic_write_json(self.path, dict(self), indent=2)

    def total(self, keys: Iterable[str]) -> Optional[float]:
        """The seconds of ``keys`` together; None when one is not known
        (e.g. a stage reused from a work dir that did not time it)."""
        values = [self.get(k) for k in keys]
        return None if any(v is None for v in values) else round(sum(values), 1)


def epoch_options(epochs: int) -> List[str]:
    """``--cfg-options`` of a ``tools/train.py`` run of ``epochs`` epochs,
    validated and saved (checkpoint) at its end."""
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}']


def train_stage(run: Run, config: str, work: str, marker: str,
                options: Sequence[str], times: Optional[StageTimes] = None,
                key: Optional[str] = None) -> str:
    """``tools/train.py config --work-dir work --cfg-options options``
    unless ``marker`` exists.

    Args:
        run (callable): ``run(cmd, log_file) -> seconds``
            (:class:`~mmsparse.experiment.runner.ToolRunner`).
        config (str): The config.
        work (str): The training's work dir (its log:
            ``train_stdout.log``).
        marker (str): The file that marks the training finished (its final
            checkpoint, an export).
        options (Sequence[str]): ``--cfg-options`` as ``KEY=VALUE``.
        times (StageTimes, optional): Where the seconds go. Defaults to
            None.
        key (str, optional): The stage's key in ``times``. Defaults to
            None.

    Returns:
        str: ``marker``.

    Raises:
        RuntimeError: The training ended without writing ``marker``.
    """
    if osp.exists(marker):
        return marker
    took = run([sys.executable, 'tools/train.py', config, '--work-dir', work,
                '--cfg-options'] + list(options),
               osp.join(work, 'train_stdout.log'))
    if times is not None:
        times[key] = took
    if not osp.exists(marker):
        raise RuntimeError(f'{key or config}: training ended without {marker}')
    return marker


def newest_metrics(folder: str) -> Dict:
    """The newest metrics file a ``tools/test.py`` run wrote under
    ``folder`` (``<timestamp>/<timestamp>.json``)."""
    found = [path for path in glob.glob(osp.join(folder, '**', '*.json'),
                                        recursive=True)
             if osp.basename(path)[:8].isdigit()]
    with open(max(found, key=osp.getmtime)) as f:
        return json.load(f)


def test_stage(run: Run, config: str, ckpt: str, work: str,
               options: Sequence[str], cache: str,
               times: Optional[StageTimes] = None,
               key: Optional[str] = None) -> Dict:
    """The metrics of ``tools/test.py config ckpt`` (run in
    ``<work>/test``), cached in ``cache`` (its done-marker).

    Args:
        run (callable): ``run(cmd, log_file) -> seconds``.
        config (str): The config.
        ckpt (str): The checkpoint.
        work (str): The stage's folder.
        options (Sequence[str]): ``--cfg-options`` as ``KEY=VALUE``.
        cache (str): The JSON file of the metrics.
        times (StageTimes, optional): Where the seconds go. Defaults to
            None.
        key (str, optional): The stage's key in ``times``. Defaults to
            None.
    """
    def test() -> Dict:
        out = osp.join(work, 'test')
        took = run([sys.executable, 'tools/test.py', config, ckpt,
                    '--work-dir', out, '--cfg-options'] + list(options),
                   osp.join(out, 'test_stdout.log'))
        if times is not None:
            times[key] = took
        return newest_metrics(out)
    return cached_json(cache, test)


def sparse_export_sizes(run: Run, ckpt: str, dense_ckpt: str, config: str,
                        work: str, times: Optional[StageTimes] = None,
                        key: Optional[str] = None) -> Dict:
    """Export ``ckpt`` sparse
    (``tools/model_converters/export_sparse_checkpoint.py``, which checks
    the strict round trip) into ``<work>/sparse_model.pth`` and compare the
    sizes (cached in ``<work>/sparse_sizes.json``).

    Returns:
        dict: Bytes of the sparse file (``sparse_file``) and of the state
        dicts of ``ckpt`` (``art_state_dict``) and ``dense_ckpt``
        (``dense_row_state_dict``) saved dense.
    """
    import torch

    def nbytes(path: str) -> int:
        buf = io.BytesIO()
        torch.save(torch.load(path, map_location='cpu',
                              weights_only=False)['state_dict'], buf)
        return buf.tell()

    def export() -> Dict:
        out = osp.join(work, 'sparse_model.pth')
        took = run([sys.executable,
                    'tools/model_converters/export_sparse_checkpoint.py', ckpt,
                    out, '--config', config],
                   osp.join(work, 'export_sparse.log'))
        if times is not None:
            times[key] = took
        return dict(sparse_file=osp.getsize(out), art_state_dict=nbytes(ckpt),
                    dense_row_state_dict=nbytes(dense_ckpt))
    return cached_json(osp.join(work, 'sparse_sizes.json'), export)


def reusable_stages(where: str, other: str, work: str,
                    saved: Optional[Mapping], current: Mapping,
                    keys: Sequence[str],
                    stages: Sequence[Tuple[str, Sequence[str]]]
                    ) -> List[Tuple[str, str]]:
    """The finished stages of the work dir ``other`` that ``work`` may
    link, as ``[(source, link)]``.

    Args:
        where (str): How the messages name ``other`` (e.g. the option).
        other (str): The other work dir.
        work (str): This run's work dir.
        saved (Mapping, optional): The options ``other`` was made with
            (None: unknown).
        current (Mapping): This run's options.
        keys (Sequence[str]): The options the stages depend on.
        stages (Sequence[tuple]): ``(entry, marker files)`` of each stage:
            its folder in both work dirs and the files (relative to it) that
            mark it finished.

    Raises:
        ValueError: Naming the first reason the stages cannot be linked (a
            directory missing, an option that differs, unfinished stages, a
            stage of ``work`` that is not a link to ``other``'s); nothing
            is changed.
    """
    if not osp.isdir(other):
        raise ValueError(f'{where}: not a directory')
    if osp.realpath(other) == osp.realpath(work):
        raise ValueError(f'{where}: is the --work-dir itself')
    if saved is None:
        raise ValueError(f'{where}: the options its stages were made with are '
                         'unknown')
    for key in keys:
        if saved.get(key) != current.get(key):
            raise ValueError(
                f"{where}: --{key.replace('_', '-')} differs (there "
                f'{saved.get(key)!r}, here {current.get(key)!r}); the stages '
                'depend on it')
    pairs, missing = [], []
    for entry, markers in stages:
        source = osp.join(other, entry)
        lost = [m for m in markers if not osp.isfile(osp.join(source, m))]
        if lost:
            missing.append(f'{entry} ({", ".join(lost)})')
        pairs.append((source, osp.join(work, entry)))
    if missing:
        raise ValueError(f'{where}: stages not finished there: '
                         + '; '.join(missing))
    for source, link in pairs:
        if osp.lexists(link) and osp.realpath(link) != osp.realpath(source):
            raise ValueError(f'{where}: {link} exists and is not a link to '
                             f'{source}; remove it or do not reuse')
    return pairs


def link_stages(pairs: Sequence[Tuple[str, str]], times: StageTimes,
                time_keys: Callable[[str], Iterable[str]] = lambda e: (e, ),
                times_file: str = 'seconds.json') -> None:
    """Symlink (relative) the stages :func:`reusable_stages` checked and
    copy their seconds (``time_keys(entry)``) from the other work dir's
    ``times_file`` where ``times`` has none."""
    if not pairs:
        return
    other = StageTimes(osp.join(osp.dirname(pairs[0][0]), times_file))
    for source, link in pairs:
        if not osp.lexists(link):
            os.makedirs(osp.dirname(link), exist_ok=True)
            os.symlink(osp.relpath(source, osp.dirname(link)), link)
        for key in time_keys(osp.basename(link)):
            if key in other and key not in times:
                times[key] = other[key]
