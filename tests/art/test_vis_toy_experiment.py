"""projects/hypersparse/run_vis_toy.py: ART vs GMP vs one-shot on the toy VIS
model. Configs consistent with the scaled schedules, resumable rows and the
report (fake rows), and one tiny ART row end to end through the real tools."""
import json
import re

import pytest
import torch
from mmengine.config import Config
from script_loader import load_script
from vis_helpers import empty_heldout_root, synthetic_video_records

from mmsparse.art import DEFAULT_EXCLUDE

NAMES = ('backbone.blocks.0.attn.qkv.weight', 'backbone.blocks.5.mlp.fc2.weight',
         'backbone.patch_embed.proj.weight', 'backbone.pyramid.scales.0.0.weight',
         'track_head.transformer_decoder.layers.0.ffn.layers.0.0.weight')


@pytest.fixture(scope='module')
def script():
    return load_script('projects/hypersparse/run_vis_toy.py')


def _hook(cfg, hook_type):
    return next(h for h in cfg.custom_hooks if h['type'] == hook_type)


def test_configs_hold_the_default_schedule(script):
    """The configs' hooks are what the script sets for the default budget,
    inherit the hard toy set and keep the base's custom hooks."""
    dense = Config.fromfile(script.DENSE)
    for method in ('art', 'gmp', 'oneshot'):
        spec = script.METHODS[method]
        cfg = Config.fromfile(spec['config'])
        assert cfg.train_cfg.max_iters == script.DEFAULT_ITERS
        assert cfg.train_dataloader.dataset.data_root == dense.train_dataloader.dataset.data_root
        assert cfg.model == dense.model and cfg.optim_wrapper == dense.optim_wrapper
        assert cfg.param_scheduler == dense.param_scheduler
        types = [h['type'] for h in cfg.custom_hooks]
        assert types[:-1] == [h['type'] for h in dense.custom_hooks]
        hook = _hook(cfg, spec['hook'])
        assert hook.target_sparsity == script.SPARSITY and hook.by_epoch is False
        # the ViT blocks only (prune_only), minus the hooks' default exclusions
        assert hook.get('exclude') is None
        assert list(hook.prune_only) == ['^backbone\\.blocks\\.']
        pruned = [any(re.search(p, n) for p in hook.prune_only)
                  and not any(re.search(p, n) for p in DEFAULT_EXCLUDE)
                  for n in NAMES]
        assert pruned == [True, True, False, False, False]
        schedule = script.hook_schedule(method, script.DEFAULT_ITERS)
        assert {k: hook[k] for k in schedule} == schedule
        # the script's overrides address this hook
        index = types.index(spec['hook'])
        assert script.hook_options(method, 400) == [
            f'custom_hooks.{index}.{k}={v}' for k, v in schedule.items()]
    art = _hook(Config.fromfile(script.METHODS['art']['config']), 'ARTHook')
    assert art.warmup == 0 and art.criterion == 'loss' and art.clip_regularizer is False
    # the longest ART phase is ART_STEPS steps and ends where GMP's schedule ends
    assert art.interval * script.ART_STEPS == 400 - art.min_finetune == \
        script.hook_schedule('gmp', 400)['end']


@pytest.mark.parametrize('iters', [4, 7, 100, 400, 1000])
def test_scaled_schedules_are_valid(script, iters):
    art = script.hook_schedule('art', iters)
    assert art['interval'] + art['min_finetune'] <= iters  # ARTHook's check
    assert (iters - art['min_finetune']) // art['interval'] <= script.ART_STEPS or \
        art['interval'] == 1
    gmp = script.hook_schedule('gmp', iters)
    assert 0 == gmp['begin'] < gmp['end'] < iters and gmp['interval'] >= 1
    assert script.hook_schedule('oneshot', iters) == dict(prune_at=0)


QUALITY = dict(dense=0.8, art=0.7, gmp=0.65, oneshot=0.3)


def _fake_run_row(calls):
    def run_row(row, args, data_root, dense_ckpt, gt, work):
        calls.append(row['name'])
        records = synthetic_video_records(QUALITY[row['method']], seed=row['seed'])
        info = {}
        if row['method'] != 'dense':
            info = dict(sparsity=0.9, zero_share=0.9, prunable_weights=100, switch_iter=240)
        if row['method'] == 'art':
            info.update(switch_reason='min_finetune' if row['seed'] else 'criterion',
                        forced=bool(row['seed']), switch_model_step=22, art_steps=24,
                        art_history=[dict(unit=10 * (i + 1), step=i, dense=5. + i,
                                          pruned=9. - 0.1 * i, **{'lambda': 1e-4 * 1.2**i})
                                     for i in range(24)],
                        reg_log=[dict(iter=9, art_lambda=1e-4, art_reg_grad=0.2,
                                      grad_norm=90.)])
        return dict(row, iters=args.iters, dense_ckpt=dense_ckpt, **records.stats(), **info,
                    train_seconds=10., test_seconds=5., records=records.to_dict())
    return run_row


def test_rows_are_resumable_and_reported(script, tmp_path, monkeypatch, capsys):
    data = empty_heldout_root(tmp_path / 'data')
    ckpt = tmp_path / 'dense.pth'
    ckpt.write_bytes(b'')
    calls = []
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(script, 'run_row', _fake_run_row(calls))
    argv = ['--work-dir', str(tmp_path / 'work'), '--results-dir', str(tmp_path / 'res'),
            '--data-root', str(data), '--dense-ckpt', str(ckpt), '--seeds', '0', '1',
            '--n-boot', '30']
    script.main(argv)
    expected = [f'{m}_seed{s}' for s in (0, 1) for m in ('dense', 'art', 'gmp', 'oneshot')]
    assert calls == expected

    # a killed run: two rows lost their done-marker; only they run again
    (tmp_path / 'work' / 'rows' / 'art_seed1.json').unlink()
    (tmp_path / 'work' / 'rows' / 'gmp_seed0.json').unlink()
    calls.clear()
    script.main(argv)
    assert calls == ['gmp_seed0', 'art_seed1']

    table = (tmp_path / 'res' / 'vis_toy.md').read_text()
    for label in ('ART + HyperSparse', 'GMP (cubic)', 'one-shot + fine-tune',
                  'dense (continued)', '| 1/2 |', 'forced (min_finetune)'):
        assert label in table
    assert (tmp_path / 'res' / 'vis_toy.png').exists()
    assert len(list((tmp_path / 'res' / 'rows').iterdir())) == 8
    summary = json.loads((tmp_path / 'res' / 'vis_toy.json').read_text())
    groups = {g['method']: g for g in summary['groups']}
    art, oneshot = groups['art'], groups['oneshot']
    assert 'diff_art_boot' not in art and 'diff_dense_boot' in art
    assert art['forced'] == 1 and art['sparsity'] == pytest.approx(0.9)
    d = oneshot['diff_art_boot']
    assert d['low'] <= d['diff'] <= d['high'] < 0  # far worse than ART, beyond the noise
    assert d['diff'] == pytest.approx(oneshot['AP'] - art['AP'])
    assert oneshot['diff_art_seeds']['n'] == 2 and set(oneshot['per_seed_art']) == {'0', '1'}
    assert summary['meta']['schedules']['art'] == script.hook_schedule('art', 400)

    # --dry-run and --report-only run nothing
    calls.clear()
    script.main(argv + ['--dry-run'])
    script.main(argv + ['--report-only'])
    assert calls == []

    # --iters is locked: another value is refused before any work, naming it
    with pytest.raises(SystemExit):
        script.main(argv + ['--iters', '200'])
    assert '--iters: 400 in the work dir, 200 now' in capsys.readouterr().err
    assert calls == []


def test_missing_dense_checkpoint_is_named(script, tmp_path):
    data = empty_heldout_root(tmp_path / 'data')
    with pytest.raises(SystemExit, match='dense checkpoint is missing'):
        script.main(['--work-dir', str(tmp_path / 'w'), '--data-root', str(data),
                     '--dense-ckpt', str(tmp_path / 'none.pth')])


def test_one_art_row_end_to_end(script, toy_ytvis_root, tmp_path):
    """tools/train.py + tools/test.py on the small toy set: 4 iterations from a
    'dense' checkpoint (the initial weights), ART steps at iterations 1 and 2,
    the switch forced at 2 (min_finetune), 2 fine-tune iterations at 90 %."""
    from mmengine.registry import init_default_scope

    from mmsparse.registry import MODELS
    cfg = Config.fromfile(script.DENSE)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'dense.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    work, res = tmp_path / 'work', tmp_path / 'res'
    script.main(['--work-dir', str(work), '--results-dir', str(res),
                 '--data-root', toy_ytvis_root, '--dense-ckpt', ckpt, '--iters', '4',
                 '--seeds', '0', '--methods', 'art', '--n-boot', '20'])
    row = json.loads((work / 'rows' / 'art_seed0.json').read_text())
    assert row['iters'] == 4 and row['options'] == script.hook_options('art', 4)
    assert row['switch_reason'] == 'min_finetune' and row['forced']
    assert row['switch_iter'] == 2 and row['art_steps'] == 2
    assert row['sparsity'] == pytest.approx(0.9, abs=1e-4)
    assert row['zero_weights'] >= row['pruned_weights']  # pruned weights are exactly zero
    assert len(row['records']['video_ids']) == 3  # the held-out videos
    assert 0 <= row['AP'] <= 1
    assert (res / 'vis_toy.md').exists() and (res / 'rows' / 'art_seed0.json').exists()


def test_reg_log_reads_every_run_of_a_resumed_row(script, tmp_path):
    """λ·‖∇R‖ and grad_norm from mmengine's scalars.json (one per run)."""
    runs = (('20260101_000000', (10, 20), 0.01), ('20260101_010000', (20, 30), 0.02))
    for stamp, iters, scale in runs:
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        lines = [dict(iter=i, grad_norm=90., art_lambda=1e-5 * i, art_reg_grad=scale * i)
                 for i in iters] + [dict(iter=40, grad_norm=80.)]  # after ART
        (vis / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines))
    log = script.reg_log(str(tmp_path))
    assert [p['iter'] for p in log] == [10, 20, 30]  # the resumed run's entry wins
    assert log[1]['art_reg_grad'] == pytest.approx(0.4)
    assert log[-1] == pytest.approx(dict(iter=30, art_lambda=3e-4, art_reg_grad=0.6,
                                         grad_norm=90.))
