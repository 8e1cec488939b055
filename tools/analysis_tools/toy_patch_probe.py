"""Can one 16x16 patch tell object from background in a toy mode?

    python tools/analysis_tools/toy_patch_probe.py [--modes easy hard closure] \
        [--num-videos 200] [--num-frames 2] [--patch 16] [--seed 0] \
        [--out work_dirs/toy_patch_probe/probe.json]

Renders ``--num-videos`` videos of every mode with the toy generator
(:mod:`mmsparse.datasets.toy_ytvis`, frames as rendered, before JPEG) and
labels every patch of the ``--patch`` grid foreground when more than half of
its pixels belong to an annotated object (visible mask). Half of the videos
(drawn by ``--seed``) train the probes, the other half test them, so no
video is on both sides. Probes, each with balanced class weights:

- ``stats``: gradient-boosted trees on per-patch statistics: mean, std and
  range per channel, a 4-bin histogram per channel, mean gradient magnitude
  and the share of pixels with a strong gradient (edge density);
- ``pixels``: logistic regression on the standardised raw pixels;
- ``stats 3x3``: the ``stats`` probe on the statistics of the patch and its
  8 neighbours (a 48x48 window; zeros beyond the frame).

Reported per mode and probe: ROC AUC and balanced accuracy on the test
patches, with the patch counts and the foreground share.
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmsparse.datasets.toy_ytvis import (TOY_YTVIS_MODES,
                                         render_closure_toy_video,
                                         render_hard_toy_video,
                                         render_toy_video)

RENDERERS = dict(easy=render_toy_video, hard=render_hard_toy_video,
                 closure=render_closure_toy_video)
PROBES = ('stats', 'pixels', 'stats 3x3')


def patchify(array: np.ndarray, patch: int) -> np.ndarray:
    """(H, W, ...) -> (H // patch, W // patch, patch, patch, ...) (the remainder is cut)."""
    gh, gw = array.shape[0] // patch, array.shape[1] // patch
    array = array[:gh * patch, :gw * patch]
    shape = (gh, patch, gw, patch) + array.shape[2:]
    return array.reshape(shape).swapaxes(1, 2)


def patch_labels(visible_masks: np.ndarray, patch: int) -> np.ndarray:
    """Foreground per patch, (gh, gw) bool, from the visible masks (K, H, W) of one frame."""
    fg = visible_masks.any(0).astype(np.float32)
    return patchify(fg, patch).mean((2, 3)) > 0.5


def patch_stats(frame: np.ndarray, patch: int) -> np.ndarray:
    """Per-patch raw statistics of an RGB frame (H, W, 3), (gh, gw, 23) float32."""
    img = frame.astype(np.float32)
    gy, gx = np.gradient(img.mean(-1))
    grad = np.hypot(gx, gy)
    p = patchify(img, patch)  # gh, gw, patch, patch, 3
    g = patchify(grad, patch)
    feats = [p.mean((2, 3)), p.std((2, 3)), p.max((2, 3)) - p.min((2, 3))]
    bins = np.clip((p // 64).astype(np.int64), 0, 3)
    feats += [(bins == b).mean((2, 3)) for b in range(4)]  # 4 bins x 3 channels
    feats += [g.mean((2, 3))[..., None], (g > 20.).mean((2, 3))[..., None]]
    return np.concatenate(feats, -1).astype(np.float32)


def with_neighbours(stats: np.ndarray) -> np.ndarray:
    """Concatenate the statistics of the 3x3 patch neighbourhood, (gh, gw, 9 * C)."""
    gh, gw, _ = stats.shape
    padded = np.pad(stats, ((1, 1), (1, 1), (0, 0)))
    return np.concatenate([padded[dy:dy + gh, dx:dx + gw] for dy in range(3)
                           for dx in range(3)], -1)


def sample_patches(mode: str, num_videos: int, num_frames: int, height: int, width: int,
                   patch: int, seed: int) -> Dict[str, np.ndarray]:
    """Render ``num_videos`` videos of ``mode``; per-patch features, labels, video index."""
    if mode not in RENDERERS:
        raise ValueError(f'toy_patch_probe: mode must be one of {tuple(RENDERERS)}, '
                         f'got {mode!r}')
    rng = np.random.default_rng(seed)
    out = dict(stats=[], context=[], pixels=[], label=[], video=[])
    for v in range(num_videos):
        video = RENDERERS[mode](rng, num_frames, height, width)
        for t in range(num_frames):
            frame = video.frames[t]
            stats = patch_stats(frame, patch)
            labels = patch_labels(video.visible_masks[:, t], patch)
            out['stats'].append(stats.reshape(-1, stats.shape[-1]))
            context = with_neighbours(stats)
            out['context'].append(context.reshape(-1, context.shape[-1]))
            pixels = patchify(frame, patch)
            out['pixels'].append(pixels.reshape(labels.size, -1).astype(np.float32) / 255.)
            out['label'].append(labels.reshape(-1))
            out['video'].append(np.full(labels.size, v))
    return {k: np.concatenate(v) for k, v in out.items()}


def _fit_score(model, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
               y_test: np.ndarray) -> Tuple[float, float]:
    model.fit(x_train, y_train)
    score = model.predict_proba(x_test)[:, 1]
    return (float(roc_auc_score(y_test, score)),
            float(balanced_accuracy_score(y_test, model.predict(x_test))))


def probe_mode(mode: str, num_videos: int = 200, num_frames: int = 2, height: int = 192,
               width: int = 320, patch: int = 16, seed: int = 0,
               probes: Sequence[str] = PROBES) -> List[dict]:
    """Probe rows (one per probe) of one toy mode; see the module docstring."""
    if num_videos < 2:
        raise ValueError(f'toy_patch_probe: num_videos must be >= 2, got {num_videos}')
    unknown = set(probes) - set(PROBES)
    if unknown:
        raise ValueError(f'toy_patch_probe: probes must be in {PROBES}, got {sorted(unknown)}')
    data = sample_patches(mode, num_videos, num_frames, height, width, patch, seed)
    test_videos = np.random.default_rng(seed + 1).permutation(num_videos)[:num_videos // 2]
    test = np.isin(data['video'], test_videos)
    y = data['label']
    if y[~test].all() or not y[~test].any() or y[test].all() or not y[test].any():
        raise ValueError(f'toy_patch_probe: {mode}: both classes are needed on both sides of '
                         f'the split; use more videos')
    rows = []
    for name in probes:
        if name == 'pixels':
            x = data['pixels']
            model = make_pipeline(StandardScaler(), LogisticRegression(
                C=0.1, max_iter=300, class_weight='balanced'))
        else:
            x = data['stats' if name == 'stats' else 'context']
            model = HistGradientBoostingClassifier(max_iter=200, class_weight='balanced',
                                                   random_state=seed)
        start = time.perf_counter()
        auc, bacc = _fit_score(model, x[~test], y[~test], x[test], y[test])
        rows.append(dict(mode=mode, probe=name, auc=auc, balanced_accuracy=bacc,
                         train_patches=int((~test).sum()), test_patches=int(test.sum()),
                         foreground_share=float(y.mean()),
                         seconds=time.perf_counter() - start))
    return rows


def format_rows(rows: List[dict]) -> str:
    """A markdown table of the probe rows."""
    lines = ['| mode | probe | ROC AUC | balanced accuracy | foreground patches | '
             'train / test patches |', '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['mode']} | {r['probe']} | {r['auc']:.3f} | "
                     f"{r['balanced_accuracy']:.3f} | {100 * r['foreground_share']:.1f} % | "
                     f"{r['train_patches']} / {r['test_patches']} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--modes', nargs='+', default=list(TOY_YTVIS_MODES),
                        choices=list(RENDERERS))
    parser.add_argument('--probes', nargs='+', default=list(PROBES), choices=list(PROBES))
    parser.add_argument('--num-videos', type=int, default=200,
                        help='videos per mode, half for training the probes')
    parser.add_argument('--num-frames', type=int, default=2, help='frames per video')
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--patch', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='json file for the rows')
    return parser.parse_args(argv)


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    rows = []
    for mode in args.modes:
        rows += probe_mode(mode, args.num_videos, args.num_frames, args.height, args.width,
                           args.patch, args.seed, args.probes)
    print(format_rows(rows))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=2)
        print(f'wrote {args.out}')
    return rows


if __name__ == '__main__':
    main()
