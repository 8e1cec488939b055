"""The two rules of ART's window criterion: best mean vs best middle score."""
import random
from typing import List, Optional, Tuple

import pytest

from mmsparse.art import ARTPhases
from mmsparse.art.window import WINDOW_RULES, SlidingWindow


def run_window(scores: List[float], dense: float, rule: str,
               buffer: int = 1) -> Tuple[Optional[int], Optional[int]]:
    """(step at which ART stops or None, best step at that point / at the
    end)."""
    win = SlidingWindow(buffer, rule)
    for step, score in enumerate(scores):
        win.update(step, score)
        if win.should_stop(dense):
            return step, win.best['step']
    return None, win.best['step']


def reference_rule(scores: List[float], dense: float,
                   buffer: int = 1) -> Tuple[Optional[int], Optional[int]]:
    """An independent transcription of the reference code's loop: a buffer
    of ``2·buffer + 1`` scores, a stored best that starts at score 0 and
    mean 0, replaced by the middle entry whenever the buffer mean beats the
    stored best's *score*; stop when the stored mean beats dense."""
    size, middle = 2 * buffer + 1, buffer
    window: List[Tuple[int, float]] = []
    best_step, best_score, best_mean = None, 0.0, 0.0
    for step, score in enumerate(scores):
        window.append((step, score))
        if len(window) > size:
            window.pop(0)
        avg = sum(s for _, s in window) / len(window)
        if avg > best_score:
            best_step, best_score = window[min(len(window) - 1, middle)]
            best_mean = avg
        if best_mean > dense:
            return step, best_step
    return None, best_step


def test_rules_on_the_simple_sequence():
    """Pruned scores [0, 0, 90, 0, 40], dense 35: the best-mean rule stops
    at step 4 with step 3 (score 0) as its model; the best-middle rule keeps
    step 2 (score 90, window mean 30) and never stops, since no later window
    mean beats 90."""
    scores = [0., 0., 90., 0., 40.]
    assert run_window(scores, 35., 'best_mean') == (4, 3)
    assert run_window(scores, 35., 'best_middle') == (None, 2)
    assert reference_rule(scores, 35.) == (None, 2)
    win = SlidingWindow(1, 'best_middle')
    for step, score in enumerate(scores):
        win.update(step, score)
    assert win.best == dict(step=2, score=90., mean=30.)
    assert not win.should_stop(35.) and win.should_stop(29.9)


def test_rules_pick_different_models():
    """A lone spike: the best-middle rule holds the spike's model, the
    best-mean rule moves on to a later, better window."""
    scores = [10., 80., 10., 50., 50., 50.]
    assert run_window(scores, 100., 'best_mean') == (None, 4)
    assert run_window(scores, 100., 'best_middle') == (None, 1)
    # and with the same scores they can stop at different steps
    assert run_window(scores, 48., 'best_mean') == (5, 4)
    assert run_window(scores, 48., 'best_middle') == (None, 1)


@pytest.mark.parametrize('buffer', [0, 1, 2])
def test_best_middle_matches_the_reference_loop(buffer):
    """On random non-negative score sequences the 'best_middle' window makes
    the reference loop's choices (stop step and best model), although it
    starts from the first window instead of a stored score of 0."""
    rng = random.Random(0)
    differ = 0
    for _ in range(400):
        n = rng.randint(1, 12)
        scores = [float(rng.choice([0, rng.randint(0, 100)]))
                  for _ in range(n)]
        dense = float(rng.randint(0, 100))
        ours = run_window(scores, dense, 'best_middle', buffer)
        ref = reference_rule(scores, dense, buffer)
        if ref[1] is None:  # the reference never stored a model: all zeros
            assert ours[0] is None and not any(scores[:ours[1] + 1])
        else:
            assert ours == ref, (scores, dense)
        differ += ours != run_window(scores, dense, 'best_mean', buffer)
    if buffer == 0:  # a window of one score: its mean is its middle
        assert differ == 0
    else:  # the rules are not the same on these sequences
        assert differ > 0


def test_rule_in_phases_state_and_errors():
    phases = ARTPhases(1e-4, 1.2, window_rule='best_middle')
    reasons = []
    for i, pruned in enumerate([0., 0., 90., 0., 40.]):
        _, _, reason = phases.step(i + 1, 100, 35., pruned)
        reasons.append(reason)
    assert reasons == [None] * 5
    assert phases.history[-1]['best_step'] == 2
    assert phases.history[-1]['best_mean'] == 30.
    state = phases.state_dict()
    assert state['window']['rule'] == 'best_middle'
    clone = ARTPhases(1e-4, 1.2, window_rule='best_middle')
    clone.load_state_dict(state)
    assert clone.window.best == phases.window.best
    with pytest.raises(ValueError, match="window_rule mismatch"):
        ARTPhases(1e-4, 1.2).load_state_dict(state)
    # a state without the key is a best-mean window
    old = dict(state['window'])
    del old['rule']
    SlidingWindow(1).load_state_dict(old)
    with pytest.raises(ValueError, match='window_rule mismatch'):
        SlidingWindow(1, 'best_middle').load_state_dict(old)
    with pytest.raises(ValueError, match=r"window_rule must be one of"):
        SlidingWindow(1, 'middle')
    assert WINDOW_RULES == ('best_mean', 'best_middle')


def test_hook_argument():
    from mmsparse.engine.hooks import ARTHook
    hook = ARTHook(0.9, window_rule='best_middle')
    assert hook.phases.window.rule == 'best_middle'
    assert ARTHook(0.9).phases.window.rule == 'best_mean'
    with pytest.raises(ValueError, match=r"ARTHook: window_rule must be one "
                       r"of \('best_mean', 'best_middle'\), got 'mean'"):
        ARTHook(0.9, window_rule='mean')
