"""Replay the recorded ART steps under both window rules.

ART's stop criterion (:class:`mmsparse.art.window.SlidingWindow`) can compare
a new window mean with the best window mean so far (``'best_mean'``, the rule
every recorded run used) or with the stored best model's own score
(``'best_middle'``, the reference code's rule). The λ schedule and the
training do not depend on the rule until the first switch, so the recorded
per-step scores (dense and pruned copy) of a run tell exactly what the other
rule would have chosen up to the step where the recorded run stopped:

* both rules stop at the same step with the same model: the run stands;
* the other rule stops earlier, or picks another model at the same step:
  the row would change (its switch is known from the record);
* the other rule has not stopped when the recorded run stopped by the
  criterion before the cap: what it does next is not recorded (rerun).

Runs read: ``results/repro/runs/*.json`` (the reproduction: main runs and
λ0 tuning, accuracy criterion) and ``results/vis_toy/rows/art_seed*.json``
(the toy VIS model, loss criterion; the record holds losses). Writes
``results/window_rule_replay.{md,json}``::

    python projects/hypersparse/replay_window_rule.py
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmsparse.art.window import SlidingWindow

HERE = osp.dirname(osp.abspath(__file__))


def replay(history: List[dict], rule: str, sign: float,
           buffer: int = 1) -> Tuple[Optional[int], int]:
    """``(step at which the rule stops or None, best step)`` over the
    recorded steps; ``sign`` = -1 turns recorded losses into scores."""
    win = SlidingWindow(buffer, rule)
    for rec in history:
        win.update(rec['step'], sign * rec['pruned'])
        if win.should_stop(sign * rec['dense']):
            return rec['step'], win.best['step']
    return None, win.best['step']


def classify(run: dict) -> dict:
    """Both rules on one recorded run; see the module docstring."""
    hist, sign, cap = run['history'], run['sign'], run['cap']
    last = hist[-1]['step']
    mean_stop, mean_best = replay(hist, 'best_mean', sign)
    mid_stop, mid_best = replay(hist, 'best_middle', sign)
    # the recorded run: its switch step and model
    rec_stop = last if run['reason'] == 'criterion' else None
    consistent = (mean_stop == rec_stop and mean_best == run['model_step'])
    at_cap = cap is not None and len(hist) >= cap
    if mid_stop == mean_stop and mid_best == mean_best:
        verdict = 'same switch, same model'
    elif mid_stop is not None and (mean_stop is None or mid_stop < mean_stop):
        verdict = (f'switches earlier (step {mid_stop}, model of step '
                   f'{mid_best})')
    elif mid_stop is None and at_cap:
        # no stop under best_middle within the recorded steps, which reach
        # the cap: forced at the same step, possibly with another model
        verdict = ('forced at the cap' + (
            ', same model' if mid_best == mean_best else
            f', model of step {mid_best}') + (
                ' (recorded: criterion)' if mean_stop is not None else ''))
    elif mid_stop == mean_stop:
        verdict = f'same step, model of step {mid_best}'
    else:
        verdict = 'not stopped when the recorded run stopped: unknown'
    changed = verdict not in ('same switch, same model',
                              'forced at the cap, same model')
    return dict(name=run['name'], kind=run['kind'],
                recorded=dict(reason=run['reason'], steps=len(hist),
                              model_step=run['model_step']),
                best_mean=dict(stop=mean_stop, best=mean_best),
                best_middle=dict(stop=mid_stop, best=mid_best),
                replay_matches_record=consistent, verdict=verdict,
                changes=changed)


def load_runs(root: str) -> List[Dict]:
    runs = []
    for path in sorted(glob.glob(osp.join(root, 'repro', 'runs', '*.json'))):
        with open(path) as f:
            r = json.load(f)
        if not r.get('art_history'):
            continue
        runs.append(dict(
            name=r['name'], kind=f"reproduction ({r['kind']})",
            history=r['art_history'], sign=1.0, reason=r['switch_reason'],
            model_step=r['model_step'],
            cap=r['schedule']['art_max_epochs']))
    for path in sorted(glob.glob(osp.join(root, 'vis_toy', 'rows',
                                          'art_seed*.json'))):
        with open(path) as f:
            r = json.load(f)
        runs.append(dict(
            name=f"vis_toy_{r['name']}", kind='toy VIS (loss criterion)',
            history=r['art_history'], sign=-1.0, reason=r['switch_reason'],
            model_step=r['switch_model_step'], cap=None))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results', default=osp.join(HERE, 'results'))
    args = parser.parse_args()
    rows = [classify(r) for r in load_runs(args.results)]
    changed = [r for r in rows if r['changes']]
    groups: Dict[str, int] = {}
    for r in changed:
        key = r['name'].rsplit('_seed', 1)[0]
        groups[key] = groups.get(key, 0) + 1
    lines = [
        '# ART window rule: recorded runs replayed under both rules', '',
        f'`python projects/hypersparse/replay_window_rule.py`: {len(rows)} '
        'ART runs with per-step records. `best_mean` = the rule the runs used '
        '(a window mean must beat the best window mean so far); '
        '`best_middle` = the reference code\'s (it must beat the stored best '
        "model's own score). Steps count from 0; stop = the step whose "
        'window fired the criterion (none: not within the recorded steps).',
        '', f'Replay of `best_mean` equals the recorded switch and model: '
        f"{sum(r['replay_matches_record'] for r in rows)} of {len(rows)} "
        'runs.', '',
        f'Runs whose switch or model would change under `best_middle`: '
        f'**{len(changed)} of {len(rows)}** (by row, runs changed: ' +
        ', '.join(f'{k} {n}' for k, n in groups.items()) + ').', '',
        '| run | recorded (reason, ART steps, model) | best_mean: stop / '
        'model | best_middle: stop / model | under best_middle |',
        '|---|---|---|---|---|'
    ]

    def fmt(d):
        return f"{'-' if d['stop'] is None else d['stop']} / {d['best']}"

    for r in rows:
        rec = r['recorded']
        lines.append(
            f"| {r['name']} | {rec['reason']}, {rec['steps']}, "
            f"{rec['model_step']} | {fmt(r['best_mean'])} | "
            f"{fmt(r['best_middle'])} | {r['verdict']} |")
    text = '\n'.join(lines) + '\n'
    with open(osp.join(args.results, 'window_rule_replay.md'), 'w') as f:
        f.write(text)
    with open(osp.join(args.results, 'window_rule_replay.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    print(text)


if __name__ == '__main__':
    main()
