"""projects/vpp/run_toy_comparison.py: resumable rows, run options and the
report, without training."""
import copy
import json
import os
import os.path as osp

import pytest
from mmengine.config import DictAction
from script_loader import load_script
from vis_helpers import ROOT, empty_heldout_root, synthetic_video_records

from mmsparse.evaluation.functional.ytvis_bootstrap import YTVISVideoRecords


@pytest.fixture(scope='module')
def script():
    return load_script('projects/vpp/run_toy_comparison.py')


QUALITY = dict(dense=0.8, temporal=0.75, image=0.6, random=0.3, truncated=0.7)


def _fake_run_row(calls):
    def run_row(row, args, data_root, pre_ckpt, gt, work):
        calls.append(row['name'])
        records = synthetic_video_records(QUALITY[row['selector']], seed=row['seed'])
        return dict(row, finetune_iters=args.finetune_iters, pretrain_iters=args.pretrain_iters,
                    **records.stats(), pkr=0.5, keep=0.4, fg_recall=0.5, train_seconds=10.,
                    test_seconds=5., records=records.to_dict())
    return run_row


def test_rows_are_resumable_and_reported(script, tmp_path, monkeypatch):
    data = empty_heldout_root(tmp_path / 'data')
    calls, trained = [], []
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(script, 'train',
                        lambda *a, **k: trained.append(a[1]) or ('pre.pth', 1.))
    monkeypatch.setattr(script, 'run_row', _fake_run_row(calls))
    argv = ['--work-dir', str(tmp_path / 'work'), '--results-dir', str(tmp_path / 'res'),
            '--data-root', str(data), '--seeds', '0', '1', '--schedules', 'single',
            '--n-boot', '30']
    script.main(argv)
    expected = [f'{n}_seed{s}' for s in (0, 1)
                for n in ('dense', 'single_temporal', 'single_image', 'single_random')]
    assert calls == expected and len(trained) == 1  # the dense pre-training, once
    rows = sorted(p.name for p in (tmp_path / 'work' / 'rows').iterdir())
    assert rows == sorted(n + '.json' for n in expected)

    # A killed run: two rows lost their done-marker; only they run again.
    (tmp_path / 'work' / 'rows' / 'single_image_seed1.json').unlink()
    (tmp_path / 'work' / 'rows' / 'dense_seed0.json').unlink()
    calls.clear()
    script.main(argv)
    assert calls == ['dense_seed0', 'single_image_seed1']

    table = (tmp_path / 'res' / 'comparison.md').read_text()
    for label in ('| dense |', 'VPP (temporal prior)', 'image-only', 'random'):
        assert label in table
    assert (tmp_path / 'res' / 'comparison.png').exists()
    assert len(list((tmp_path / 'res' / 'rows').iterdir())) == 8
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    groups = {g['selector']: g for g in summary['groups']}
    assert groups['dense']['seeds'] == [0, 1] and 'diff_boot' not in groups['dense']
    rnd = groups['random']
    assert rnd['diff_boot']['low'] <= rnd['diff_boot']['diff'] <= rnd['diff_boot']['high']
    assert rnd['diff_boot']['high'] < 0  # much worse than dense, beyond the noise
    assert rnd['diff_seeds']['n'] == 2 and set(rnd['per_seed']) == {'0', '1'}
    assert rnd['diff_boot']['diff'] == pytest.approx(rnd['AP'] - groups['dense']['AP'])
    contrasts = {(c['a'], c['b']) for c in summary['contrasts']}
    assert contrasts == {('temporal', 'image'), ('temporal', 'random')}

    # Diagnostic rows of the dense model cut to its first blocks: reported
    # against dense like a selector, after the pruning rows.
    calls.clear()
    script.main(argv + ['--truncate', '2'])
    assert calls == ['trunc2_seed0', 'trunc2_seed1']
    table = (tmp_path / 'res' / 'comparison.md').read_text()
    assert 'ViT cut to its first 2 of 6 blocks' in table
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    assert [g['schedule'] for g in summary['groups']][-1] == 'trunc2'
    assert summary['groups'][-1]['diff_seeds']['n'] == 2
    with pytest.raises(SystemExit):
        script.main(argv + ['--truncate', '6'])

    # --dry-run and --report-only do not run anything.
    calls.clear()
    script.main(argv + ['--dry-run'])
    script.main(argv + ['--report-only'])
    assert calls == []


def test_plan_rows(script):
    class Args:
        seeds = [0, 1, 2]
        schedules = ['paper', 'single']
        selectors = ['temporal', 'image', 'random']
        truncate = [1, 3]
    rows = script.plan_rows(Args)
    names = [r['name'] for r in rows]
    assert len(names) == len(set(names)) == 3 * 9
    cut = [r for r in rows if r['selector'] == 'truncated']
    assert {r['name'] for r in cut} == {f'trunc{k}_seed{s}' for k in (1, 3) for s in (0, 1, 2)}
    assert {r['config'] for r in cut} == {script.DENSE}
    assert {o for r in cut for o in r['options']} == {
        'model.backbone.arch.num_layers=1', 'model.backbone.arch.num_layers=3'}
    paper = [r for r in rows if r['schedule'] == 'paper']
    assert {r['config'] for r in paper} == {script.SCHEDULES['paper']['config']}
    assert {o for r in paper for o in r['options']} == {
        f'model.backbone.selector={s}' for s in Args.selectors}
    for r in rows:
        assert osp.exists(osp.join(ROOT, r['config']))


WEAK_DECODER = 'model.track_head.pixel_decoder.encoder.num_layers=1'


def _fake_tools(commands):
    """``run`` for tools/train.py and tools/test.py: records the command and
    writes what tools/test.py would (metrics and predictions files)."""
    records = synthetic_video_records(0.7, seed=0)

    def run(cmd, log_file):
        commands.append(cmd)
        if 'tools/test.py' in cmd:
            out = cmd[cmd.index('--work-dir') + 1]
            os.makedirs(osp.join(out, 'stamp'), exist_ok=True)
            with open(osp.join(out, 'stamp', 'metrics.json'), 'w') as f:
                json.dump({'youtube_vis/segm_mAP': round(records.stats()['AP'], 3)}, f)
            with open(osp.join(out, 'predictions.json'), 'w') as f:
                json.dump([], f)
        return 1.
    return run, records


def _options(cmd):
    return cmd[cmd.index('--cfg-options') + 1:]


def test_cfg_options_reach_every_command_and_lock_the_work_dir(script, tmp_path, monkeypatch,
                                                               capsys):
    data = empty_heldout_root(tmp_path / 'data')
    commands = []
    run, records = _fake_tools(commands)
    monkeypatch.setattr(script, 'run', run)
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(YTVISVideoRecords, 'from_predictions',
                        staticmethod(lambda gt, predictions: records))
    work = tmp_path / 'work'
    argv = ['--work-dir', str(work), '--results-dir', str(tmp_path / 'res'), '--data-root',
            str(data), '--seeds', '0', '--schedules', 'single', '--selectors', 'random',
            '--truncate', '1', '--n-boot', '20', '--pretrain-iters', '3', '--finetune-iters', '2',
            '--cfg-options', WEAK_DECODER, 'model.backbone.arch.num_layers=4']
    script.main(argv)
    train = [c for c in commands if 'tools/train.py' in c]
    test = [c for c in commands if 'tools/test.py' in c]
    assert len(train) == 4 and len(test) == 3  # pre-training + 3 rows; 3 rows tested

    def row_of(cmd):  # the row (or dense_pretrain) whose work dir the tool writes
        return osp.relpath(cmd[cmd.index('--work-dir') + 1], work).split(os.sep)[0]
    dense_cmds = [c for c in commands if row_of(c) != 'single_random_seed0']
    vpp_cmds = [c for c in commands if row_of(c) == 'single_random_seed0']
    assert len(dense_cmds) == 5 and len(vpp_cmds) == 2
    for cmd in commands:
        assert WEAK_DECODER in _options(cmd)
    for cmd in dense_cmds:  # the ViT is model.backbone ...
        assert 'model.backbone.arch.num_layers=4' in _options(cmd)
    for cmd in vpp_cmds:  # ... and model.backbone.backbone in VPPBackbone
        opts = _options(cmd)
        assert 'model.backbone.backbone.arch.num_layers=4' in opts
        assert 'model.backbone.arch.num_layers=4' not in opts
        assert opts.index('model.backbone.selector=random') > opts.index(WEAK_DECODER)
    for cmd in (c for c in commands if row_of(c) == 'trunc1_seed0'):  # the cut wins
        opts = _options(cmd)
        assert opts.index('model.backbone.arch.num_layers=1') > \
            opts.index('model.backbone.arch.num_layers=4')
    # The report states the options and follows the ViT depth they set.
    table = (tmp_path / 'res' / 'comparison.md').read_text()
    assert 'ViT 4 blocks dim 192' in table and 'ViT cut to its first 1 of 4 blocks' in table
    assert f'`{WEAK_DECODER}`' in table and '1 deformable-attention encoder layers' in table
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    assert summary['meta']['cfg_options'] == {
        'model.track_head.pixel_decoder.encoder.num_layers': 1,
        'model.backbone.arch.num_layers': 4}
    assert json.loads((work / 'run_options.json').read_text()) == dict(
        cfg_options=summary['meta']['cfg_options'], pretrain_iters=3, finetune_iters=2,
        toy='hard')

    # Same work dir, other options: refused before any work, naming both values.
    for change, said in (
            (['--cfg-options', 'model.track_head.pixel_decoder.encoder.num_layers=2'],
             [f'{WEAK_DECODER} model.backbone.arch.num_layers=4 in the work dir',
              'model.track_head.pixel_decoder.encoder.num_layers=2 now']),
            (['--finetune-iters', '5'], ['--finetune-iters: 2 in the work dir, 5 now'])):
        commands.clear()
        bad = argv[:-3] + change if change[0] == '--cfg-options' else argv + change
        with pytest.raises(SystemExit):
            script.main(bad)
        err = capsys.readouterr().err
        assert 'run_toy_comparison.py: error: work dir' in err
        for text in said + ['Use another --work-dir']:
            assert text in ' '.join(err.split())
        assert commands == []
    with pytest.raises(SystemExit):  # no options at all is another model too
        script.main(argv[:-3])
    assert '(none) now' in capsys.readouterr().err
    # A work dir of the script before run_options.json: its rows tell the iterations.
    (work / 'run_options.json').unlink()
    with pytest.raises(SystemExit):
        script.main(argv + ['--pretrain-iters', '4'])
    assert '--pretrain-iters: 3 in the work dir, 4 now' in capsys.readouterr().err
    # The same options continue it; --truncate is checked against the depth set.
    script.main(argv + ['--dry-run'])
    assert '3/3 rows finished' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        script.main(argv + ['--truncate', '4'])
    assert 'must be in 1..3' in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the paper schedule prunes at block 4 of 0..3
        script.main(argv + ['--schedules', 'paper'])
    assert 'prunes at blocks [1, 2, 3, 4], beyond the 4-block ViT' in capsys.readouterr().err
    assert commands == []


@pytest.mark.parametrize('option, message', [
    ('model.track_head.pixel_decoder.encoder.num_layers=0', 'must be an int >= 1'),
    ('model.track_head.pixel_decoder.encoder.num_layer=1', "no 'num_layer' under"),
    ('model.backbone.arch.num_layer=4', "no 'num_layer' under model.backbone"),
    ('train_cfg.max_iters=10', 'set by the script itself'),
    ('train_dataloader.dataset.data_root=x', 'set by the script itself'),
])
def test_bad_cfg_options_fail_before_any_work(script, tmp_path, monkeypatch, capsys,
                                              option, message):
    monkeypatch.setattr(script, 'run', lambda *a: pytest.fail('ran a tool'))
    with pytest.raises(SystemExit):
        script.main(['--work-dir', str(tmp_path / 'w'), '--cfg-options', option])
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'w').exists()


def test_gate_rows_only_dense_and_truncated(script, tmp_path, monkeypatch):
    """``--schedules`` with no value: the dense rows and the cut ViT only,
    reported with the trunc - dense difference and its intervals."""
    data = empty_heldout_root(tmp_path / 'data')
    calls = []
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(script, 'train', lambda *a, **k: ('pre.pth', 1.))
    monkeypatch.setattr(script, 'run_row', _fake_run_row(calls))
    script.main(['--work-dir', str(tmp_path / 'work'), '--results-dir', str(tmp_path / 'res'),
                 '--data-root', str(data), '--seeds', '0', '1', '--n-boot', '30',
                 '--cfg-options', WEAK_DECODER, '--schedules', '--truncate', '1'])
    assert calls == ['dense_seed0', 'trunc1_seed0', 'dense_seed1', 'trunc1_seed1']
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    assert [g['schedule'] for g in summary['groups']] == ['dense', 'trunc1']
    cut = summary['groups'][1]
    assert cut['diff_boot']['low'] <= cut['diff_boot']['diff'] <= cut['diff_boot']['high']
    assert cut['diff_seeds']['n'] == 2 and set(cut['per_seed']) == {'0', '1'}
    assert summary['contrasts'] == []
    table = (tmp_path / 'res' / 'comparison.md').read_text()
    assert 'ViT cut to its first 1 of 6 blocks' in table and 'Selector contrasts' not in table
    assert (tmp_path / 'res' / 'comparison.png').exists()


def test_import_loads_no_config_and_help_states_the_depth(capsys):
    fresh = load_script('projects/vpp/run_toy_comparison.py')
    assert fresh._CONFIGS == {}  # the depth is read in main, not at import
    with pytest.raises(SystemExit):
        fresh.main(['--help'])
    assert '1-5 of the 6-block toy' in ' '.join(capsys.readouterr().out.split())


def test_format_option_round_trips_through_dict_action(script):
    for value in (1, 0.5, 1e-05, True, None, 'abc', [1, 2], (3,), [(1, 2), ['a', 'b']], []):
        key, text = script.format_option('a.b', value).split('=', 1)
        assert key == 'a.b' and DictAction._parse_iterable(text) == value


def test_weak_pixel_decoder_builds_and_trains(script, toy_ytvis_root):
    """The option the README's gate command uses: one deformable-attention
    encoder layer (0 does not build in mmdet 3.3) on the dense and VPP toy
    configs, a loss step with gradients."""
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from mmsparse.registry import DATASETS, MODELS
    init_default_scope('mmdet')
    key, value = WEAK_DECODER.split('=')
    for config in (script.DENSE, script.SCHEDULES['paper']['config']):
        cfg = Config.fromfile(osp.join(ROOT, config))
        cfg.merge_from_dict({key: int(value)})
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        assert len(model.track_head.pixel_decoder.encoder.layers) == 1
        ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
        ds_cfg.data_root = toy_ytvis_root
        dataset = DATASETS.build(ds_cfg)
        model.train()
        data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
        losses = model.loss(**data)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
        layer = model.track_head.pixel_decoder.encoder.layers[0]
        assert layer.self_attn.value_proj.weight.grad.abs().sum() > 0
