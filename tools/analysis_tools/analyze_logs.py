"""Curves of training runs from mmengine's ``scalars.json`` (PNG), and a summary.

    python tools/analysis_tools/analyze_logs.py RUN [RUN ...] [--keys K ...]
        [--out curves.png] [--title TEXT]

A RUN is a ``vis_data/scalars.json`` or a work dir (its latest
``<timestamp>/vis_data/scalars.json`` with training iterations). Without
``--keys`` the figure has one panel per kind of scalar found: losses (the
total and its top-level terms), evaluation (YouTube-VIS AP, accuracy),
sparsity and keep ratios (ART/GMP ``sparsity``, P3B ``p3b_keep_ratio``, VPP
``vpp_pkr`` / ``vpp_keep*``), ART's lambda and the learning rate; several
runs share the panels. Validation values are drawn dashed at the iteration
they followed. ``--keys`` plots just those keys in one panel. Also printed,
per run: iterations, the median seconds per iteration and the last value of
every plotted key.
"""
import argparse
import glob
import os.path as osp
import statistics
from typing import Dict, List

from mmsparse.utils.plots import (assign_panels, plot_log_panels, read_scalars,
                                  scalar_series)


def find_scalars(run: str) -> str:
    """The scalars.json of ``run`` (a file, or a work dir: its latest)."""
    if osp.isfile(run):
        return run
    if osp.isdir(run):
        found = glob.glob(osp.join(run, '*', 'vis_data', 'scalars.json')) + \
            glob.glob(osp.join(run, 'vis_data', 'scalars.json'))
        # the latest training run (a test run in the same work dir logs no iterations)
        for path in sorted(found, key=osp.getmtime, reverse=True):
            if any('iter' in row for row in read_scalars(path)):
                return path
        if found:
            return max(found, key=osp.getmtime)
    raise FileNotFoundError(f'analyze_logs: no scalars.json at {run!r} (give the file or a '
                            'work dir with <timestamp>/vis_data/scalars.json)')


def run_names(paths: List[str]) -> List[str]:
    """Short, distinct names of the runs for the legend."""
    names = [osp.basename(osp.normpath(p)) for p in paths]
    if len(set(names)) < len(names):
        names = [osp.normpath(p) for p in paths]
    return names


def summary(name: str, rows: List[dict], keys: List[str]) -> str:
    """Iterations, median s/iteration and the last value of ``keys``."""
    iters = [r['iter'] for r in rows if 'iter' in r]
    times = [r['time'] for r in rows if 'iter' in r and 'time' in r]
    lines = [f'{name}: {max(iters) if iters else 0} iterations logged'
             + (f', median {statistics.median(times):.3f} s/iteration' if times else '')]
    for key in keys:
        xs, ys = scalar_series(rows, key)
        if xs:
            lines.append(f'  {key}: {ys[-1]:.6g} (at {xs[-1]})')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='scalars.json files or work dirs')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='plot only these scalars (one panel)')
    parser.add_argument('--out', default='curves.png', help='PNG path')
    parser.add_argument('--title', default=None)
    return parser.parse_args(argv)


def main(argv=None) -> Dict[str, str]:
    args = parse_args(argv)
    paths = [find_scalars(r) for r in args.runs]
    runs = {name: read_scalars(p) for name, p in zip(run_names(args.runs), paths)}
    out = plot_log_panels(runs, args.out, keys=args.keys, title=args.title)
    for name, rows in runs.items():
        keys = args.keys or [k for ks in assign_panels({k for r in rows for k in r}).values()
                             for k in ks]
        print(summary(name, rows, keys))
    print(f'wrote {out}')
    return dict(out=out)


if __name__ == '__main__':
    main()
