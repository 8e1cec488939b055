"""Stages of the toy video-instance-segmentation comparisons: data options,
a resumable ``tools/train.py`` run, ``tools/test.py`` of a config with an
evaluator added (the predictions kept for the bootstrap over videos), and
the held-out ground truth."""
import glob
import json
import os
import os.path as osp
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

Run = Callable[[Sequence[str], str], float]

#: Checkpoint interval of long trainings: a killed run resumes from the last.
RESUME_INTERVAL = 250
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def data_options(data_root: str) -> List[str]:
    """``--cfg-options`` that point every dataloader at ``data_root``."""
    return [f'{dl}.dataset.data_root={data_root}' for dl in DATALOADERS]


def iteration_options(iters: int,
                      resume_interval: int = RESUME_INTERVAL) -> List[str]:
    """``iters`` training iterations without validation, a checkpoint every
    ``resume_interval`` iterations (only the newest kept) so that a killed
    training resumes instead of starting again."""
    return [f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters + 1}', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None',
            f'default_hooks.checkpoint.interval={min(iters, resume_interval)}',
            'default_hooks.checkpoint.max_keep_ckpts=1']


def train_iters(run: Run, config: str, work: str, iters: int,
                options: Sequence[str], seed: int,
                load_from: Optional[str] = None
                ) -> Tuple[str, Optional[float]]:
    """``tools/train.py`` of ``config`` for ``iters`` iterations into
    ``work``, resumed from its newest checkpoint when a run was killed.

    Args:
        run (callable): ``run(cmd, log_file) -> seconds``
            (:class:`~mmsparse.experiment.runner.ToolRunner`).
        config (str): The config (relative to the repository root).
        work (str): The training's work dir.
        iters (int): Iterations.
        options (Sequence[str]): More ``--cfg-options`` (options starting
            with ``val_`` are dropped: no validation).
        seed (int): ``randomness.seed``.
        load_from (str, optional): Checkpoint to start from (not on
            resume). Defaults to None.

    Returns:
        tuple: The final checkpoint and the seconds of the training (None
        when it was finished before: the cached stage).
    """
    ckpt = osp.join(work, f'iter_{iters}.pth')
    if osp.exists(ckpt):
        return ckpt, None
    os.makedirs(work, exist_ok=True)
    opts = iteration_options(iters) + [
        o for o in options if not o.startswith('val_')] + \
        [f'randomness.seed={seed}']
    resume = []
    if osp.exists(osp.join(work, 'last_checkpoint')):
        resume = ['--resume']  # mmengine picks the newest checkpoint
    elif load_from:
        opts.append(f'load_from={load_from}')
    log = osp.join(work, 'train_stdout.log')
    if resume and osp.exists(log):
        os.replace(log, log + f'.{int(time.time())}')
    took = run([sys.executable, 'tools/train.py', config, '--work-dir', work]
               + resume + ['--cfg-options'] + opts, log)
    return ckpt, took


def wrapped_test(run: Run, root: str, config: str, ckpt: str, out: str,
                 options: Sequence[str], lines: str, wrapper: str) -> float:
    """``tools/test.py`` of a wrapper config that inherits ``config`` and
    adds ``lines`` (e.g. another ``test_evaluator``), run in ``out``.

    Args:
        run (callable): ``run(cmd, log_file) -> seconds``.
        root (str): The repository root.
        config (str): The config (relative to ``root``).
        ckpt (str): The checkpoint.
        out (str): The test's work dir (its log: ``test_stdout.log``).
        options (Sequence[str]): ``--cfg-options`` as ``KEY=VALUE``.
        lines (str): Config lines after ``_base_`` (each ending in a
            newline).
        wrapper (str): Where the wrapper config is written.

    Returns:
        float: The seconds of the test.
    """
    os.makedirs(out, exist_ok=True)
    with open(wrapper, 'w') as f:
        f.write(f'_base_ = [{osp.join(root, config)!r}]\n' + lines)
    return run([sys.executable, 'tools/test.py', wrapper, ckpt, '--work-dir', out,
                '--cfg-options'] + list(options), osp.join(out, 'test_stdout.log'))


def test_predictions(run: Run, root: str, config: str, ckpt: str, work: str,
                     options: Sequence[str]) -> Tuple[Dict, List, float]:
    """``tools/test.py`` with a second evaluator that writes the
    predictions (``<work>/test/predictions.json``).

    Returns:
        tuple: The metrics, the predictions and the seconds.
    """
    out = osp.join(work, 'test')
    pred_prefix = osp.join(out, 'predictions')
    took = wrapped_test(
        run, root, config, ckpt, out, options,
        'test_evaluator = [\n'
        "    dict(type='YouTubeVISAPMetric', metric='youtube_vis_ap'),\n"
        "    dict(type='YouTubeVISAPMetric', metric='youtube_vis_ap',\n"
        f'         format_only=True, outfile_prefix={pred_prefix!r})]\n',
        osp.join(work, 'test_config.py'))
    files = sorted(glob.glob(osp.join(out, '*', '*.json')), key=osp.getmtime)
    with open(files[-1]) as f:
        metrics = json.load(f)
    with open(pred_prefix + '.json') as f:
        predictions = json.load(f)
    return metrics, predictions, took


def toy_data(run: Run, root: str, data_root: str, mode: str,
             spec: Dict[str, Any], log_file: str) -> None:
    """Make the toy set of ``mode`` at ``data_root`` with
    ``tools/misc/make_toy_ytvis.py`` unless it is there; a set that is there
    must be of ``mode`` (checked on its raw annotations, where present).

    Args:
        run (callable): ``run(cmd, log_file) -> seconds``.
        root (str): The repository root (``data_root`` is relative to it,
            or absolute).
        data_root (str): The dataset root.
        mode (str): The generator's ``--mode`` ('easy', 'hard', 'closure').
        spec (dict): ``num_videos``, ``num_frames``, ``seed`` and
            ``heldout_ratio`` of the generator.
        log_file (str): The generator's log.

    Raises:
        ValueError: The set at ``data_root`` is of another mode.
    """
    path = osp.join(root, data_root)
    if not osp.exists(osp.join(path, 'annotations',
                               'youtube_vis_2021_heldout.json')):
        run([sys.executable, 'tools/misc/make_toy_ytvis.py', '--mode', mode,
             '--out', data_root, '--num-videos', str(spec['num_videos']),
             '--num-frames', str(spec['num_frames']), '--seed',
             str(spec['seed']), '--heldout-ratio', str(spec['heldout_ratio']),
             '--convert'], log_file)
        return
    raw = osp.join(path, 'train', 'instances.json')
    if not osp.exists(raw):
        return
    with open(raw) as f:
        found = json.load(f).get('info', {}).get('mode', 'easy')
    if found != mode:
        raise ValueError(f'toy_data: {data_root} holds the {found!r} toy set, '
                         f'the run needs {mode!r} (pass the --data-root of a '
                         f'{mode!r} set, or a new folder to make one)')


def heldout_gt(data_root: str) -> Dict:
    """YouTube-VIS ground truth of the held-out videos (raw annotations)."""
    with open(osp.join(data_root, 'annotations',
                       'youtube_vis_2021_heldout.json')) as f:
        ids = {v['id'] for v in json.load(f)['videos']}
    with open(osp.join(data_root, 'train', 'instances.json')) as f:
        raw = json.load(f)
    return dict(categories=raw['categories'],
                videos=[v for v in raw['videos'] if v['id'] in ids],
                annotations=[a for a in raw['annotations']
                             if a['video_id'] in ids])
