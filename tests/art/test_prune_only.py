"""``prune_only`` of the masked pruning hooks: it selects the candidates,
``exclude`` still removes names from them; bad patterns and patterns that
match no weight are class-named errors raised before training."""
import glob
import os.path as osp

import pytest
import torch.nn as nn
from art_helpers import build_runner, get_hook, tiny_cfg, unwrap

from mmsparse.art import DEFAULT_EXCLUDE, collect_prunable, prunable_weights
from mmsparse.engine.hooks import (ARTHook, GradualMagnitudePruningHook,
                                   OneShotMagnitudePruningHook)

HOOKS = [(ARTHook, dict(target_sparsity=0.9)),
         (OneShotMagnitudePruningHook, dict(target_sparsity=0.5, prune_at=0)),
         (GradualMagnitudePruningHook,
          dict(target_sparsity=0.9, begin=0, end=2))]


def _vit_like() -> nn.Module:
    """patch_embed, blocks (with a Linear named like a norm and a frozen
    one), a VPP-style pruner and a head."""
    model = nn.Module()
    model.patch_embed = nn.Module()
    model.patch_embed.proj = nn.Conv2d(3, 8, 4)  # 384
    model.blocks = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8),
                                 nn.Linear(8, 4))  # 64, 32
    model.blocks[0].norm_gate = nn.Linear(8, 2)  # 16, default-excluded
    model.pruner = nn.Module()
    model.pruner.selector = nn.Linear(8, 2)  # 16
    model.head = nn.Linear(8, 3)  # 24
    return model


def test_prune_only_selects_and_exclude_still_removes():
    model = _vit_like()
    skipped = {}
    weights = prunable_weights(model, DEFAULT_EXCLUDE, skipped=skipped,
                               prune_only=[r'^blocks\.'])
    assert list(weights) == ['blocks.0.weight', 'blocks.2.weight']
    # outside prune_only counted there (also the excluded patch embedding
    # and pruner), the default exclusion inside the blocks under 'excluded'
    assert skipped == dict(outside_prune_only=384 + 16 + 24, excluded=16,
                           frozen=0)
    # several patterns: their union; exclude=[] keeps everything selected
    assert list(prunable_weights(model, [], prune_only=[
        r'^blocks\.0\.', r'^head\.'])) == [
            'blocks.0.weight', 'blocks.0.norm_gate.weight', 'head.weight']
    # prune_only and exclude that excludes its whole selection: nothing
    assert not prunable_weights(model, [r'^head'], prune_only=[r'^head\.'])
    # frozen weights inside the selection stay out unless asked for
    model.blocks[2].weight.requires_grad_(False)
    assert list(prunable_weights(model, DEFAULT_EXCLUDE, include_frozen=False,
                                 skipped=skipped,
                                 prune_only=[r'^blocks\.'])) == [
                                     'blocks.0.weight']
    assert skipped['frozen'] == 32
    # None: the old behaviour
    assert list(prunable_weights(model, DEFAULT_EXCLUDE)) == [
        'blocks.0.weight', 'blocks.2.weight', 'head.weight']


def test_summary_counts_prune_only_and_errors_name_the_patterns():
    model = _vit_like()
    weights, summary = collect_prunable(model, list(DEFAULT_EXCLUDE), True,
                                        prune_only=[r'^blocks\.'])
    assert len(weights) == 2
    assert summary == ('2 prunable tensors with 96 weights; left out: 424 '
                       'weights outside prune_only, 16 weights matching '
                       'exclude, 0 frozen (requires_grad=False)')
    _, summary = collect_prunable(model, list(DEFAULT_EXCLUDE), True)
    assert 'prune_only' not in summary
    with pytest.raises(ValueError) as err:
        collect_prunable(model, [], True, prune_only=[r'^backbone\.blocks\.'])
    message = str(err.value)
    assert message.startswith(
        "prune_only=['^backbone\\\\.blocks\\\\.'] matches none of the 6 "
        'prunable weights')
    assert 'patch_embed.proj.weight' in message  # examples of the names
    # matches, but exclude removes all of it: the old error, naming both
    with pytest.raises(ValueError, match=r"no prunable layers .* "
                       r"prune_only=\['\^head'\], exclude=\['head'\]"):
        collect_prunable(model, ['head'], True, prune_only=['^head'])


@pytest.mark.parametrize('cls,kwargs', HOOKS)
@pytest.mark.parametrize('prune_only,error,detail', [
    ('blocks', TypeError, "got 'blocks'"),
    ([r'^blocks\.', 3], TypeError, 'got ['),
    ([], ValueError, 'got []'),
    (['blocks.(0'], ValueError, "'blocks.(0' is not a valid regular "
     'expression (missing ), unterminated subpattern'),
])
def test_bad_prune_only_is_a_construction_error(cls, kwargs, prune_only,
                                                error, detail):
    with pytest.raises(error) as err:
        cls(prune_only=prune_only, **kwargs)
    message = str(err.value)
    assert message.startswith(
        f'{cls.__name__}: prune_only must be None (every weight not '
        'excluded) or a non-empty list of regular expressions (strings, '
        're.search on parameter names)')
    assert detail in message


def test_bad_exclude_regex_is_a_construction_error():
    with pytest.raises(ValueError, match=r"^ARTHook: exclude must be None "
                       r"\(the default exclusions\) or a list .*'\[' is not "
                       'a valid regular expression'):
        ARTHook(target_sparsity=0.9, exclude=['['])
    assert ARTHook(target_sparsity=0.9, exclude=[]).exclude == []


def _log(work_dir) -> str:
    return open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()


def test_prune_only_in_a_run(tmp_path):
    """One-shot to 50 % of the head only: the convolutions stay dense, the
    start-up line counts what prune_only left out."""
    hook = dict(type='OneShotMagnitudePruningHook', target_sparsity=0.5,
                prune_only=[r'^head\.'], prune_at=0, plot=False)
    runner = build_runner(tiny_cfg(tmp_path, [hook], max_epochs=1,
                                   ckpt_interval=1))
    runner.train()
    oneshot = get_hook(runner, OneShotMagnitudePruningHook)
    assert list(oneshot.masks) == ['head.fc.weight']
    params = dict(unwrap(runner.model).named_parameters())
    assert int((params['head.fc.weight'] == 0).sum()) == 80
    convs = [w for n, w in prunable_weights(unwrap(runner.model)).items()
             if n.startswith('backbone.')]
    assert convs and all(int((w == 0).sum()) == 0 for w in convs)
    outside = sum(w.numel() for w in convs)
    assert (f'OneShotMagnitudePruningHook: 1 prunable tensors with 160 '
            f'weights; left out: {outside} weights outside prune_only, 0 '
            'weights matching exclude') in _log(tmp_path)


def test_prune_only_matching_nothing_raises_before_training(tmp_path):
    hook = dict(type='GradualMagnitudePruningHook', target_sparsity=0.5,
                begin=0, end=1, prune_only=[r'^backbone\.blocks\.'],
                plot=False)
    runner = build_runner(tiny_cfg(tmp_path, [hook], max_epochs=1))
    with pytest.raises(ValueError) as err:
        runner.train()
    assert str(err.value).startswith(
        "GradualMagnitudePruningHook: prune_only=['^backbone\\\\.blocks"
        "\\\\.'] matches none of the 3 prunable weights")
    assert runner.iter == 0
