"""The CPU reproduction of the HyperSparse comparison: hard digits, configs
consistent with the scaled schedule, one tiny row end to end, resume."""
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from script_loader import load_script

from mmsparse.datasets.digits import HardDigitsDataset
from mmsparse.experiment.artifacts import weights_digest
from mmsparse.experiment.tables import complete_seeds

CFG_DIR = 'projects/hypersparse/configs'


def _script():
    return load_script('projects/hypersparse/run_reproduction.py')


def _infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


@pytest.fixture(scope='module')
def hard_splits():
    return {s: HardDigitsDataset(split=s) for s in ('train', 'val', 'test')}


def test_hard_digits_splits(hard_splits):
    digits = {s: {d['digit_index'] for d in _infos(ds)}
              for s, ds in hard_splits.items()}
    assert not digits['train'] & digits['test']
    assert not digits['train'] & digits['val']
    assert not digits['val'] & digits['test']
    assert sum(len(d) for d in digits.values()) == 1797
    test = hard_splits['test']
    assert len(test) >= 1000  # one test image <= 0.1 %
    assert len(hard_splits['train']) == 8 * len(digits['train'])
    infos = _infos(test)
    assert infos[0]['img'].shape == (16, 16)
    assert infos[0]['digit_index'] == infos[1]['digit_index']
    # deterministic: a second build renders identical images
    again = _infos(HardDigitsDataset(split='test'))
    assert all(np.array_equal(a['img'], b['img'])
               for a, b in zip(infos[:50], again[:50]))
    # variants of one digit differ (random pose, noise)
    assert not np.array_equal(infos[0]['img'], infos[1]['img'])


def test_hard_digits_bad_args():
    with pytest.raises(ValueError, match='HardDigitsDataset: split'):
        HardDigitsDataset(split='dev')
    with pytest.raises(ValueError, match='HardDigitsDataset: variants'):
        HardDigitsDataset(split='test', variants=0)
    with pytest.raises(ValueError, match='HardDigitsDataset: test_ratio'):
        HardDigitsDataset(split='test', val_ratio=0.5, test_ratio=0.5)


def test_configs_hold_the_scaled_schedule(hard_splits):
    base = Config.fromfile(osp.join(CFG_DIR, 'repro_resnet8_harddigits.py'))
    ipe = math.ceil(len(hard_splits['train']) / 64)
    assert base.iters_per_epoch == ipe
    # every phase and λ's growth compressed by the same factor in iterations
    compression = 160 * 782 / (base.finetune_epochs * ipe)
    assert base.time_compression == pytest.approx(compression)
    assert base.warmup_epochs * ipe * compression == pytest.approx(
        60 * 782, rel=0.02)
    assert base.repro_eta == pytest.approx(1.05**(compression * ipe / 782))
    # the reference's growth per iteration (η = 1.05 per 782 iterations)
    assert base.per_iteration_eta == pytest.approx((1.05**(1 / 782))**ipe)
    ft = base.finetune_epochs
    assert base.finetune_milestones == [ft // 2, 3 * ft // 4]
    script = _script()
    assert script.milestones(ft) == base.finetune_milestones
    for name, path in script.CONFIGS.items():
        cfg = Config.fromfile(osp.join(CFG_DIR, path))
        assert cfg.model == base.model
        assert cfg.optim_wrapper == base.optim_wrapper
        if name == 'dense':
            assert cfg.train_cfg.max_epochs == ft
            assert cfg.param_scheduler.milestones == base.finetune_milestones
            continue
        hook = cfg.custom_hooks[-1]
        assert cfg.param_scheduler is None
        assert hook.finetune_lr_milestones == base.finetune_milestones
        if name in script.ART_METHODS:
            assert hook.eta == pytest.approx(base.repro_eta)
            assert hook.min_finetune == hook.max_finetune == ft
            assert hook.warmup == 0
            assert cfg.train_cfg.max_epochs == base.art_max_epochs + ft
        else:
            assert cfg.train_cfg.max_epochs == base.prune_window + ft
            assert hook.get('prune_at', hook.get('end')) == base.prune_window


TINY = [
    '--seeds', '0', '--sparsities', '0.9', '--methods', 'dense', 'art_hs',
    'oneshot', '--lambda-grid', '5e-5', '--tune-seed', '0', '--schedule',
    'warmup_epochs=1', 'finetune_epochs=2', 'art_max_epochs=1',
    'prune_window=1', '--cfg-options', 'train_dataloader.dataset.variants=1',
    'train_dataloader.dataset.indices=128', 'val_dataloader.dataset.indices=64',
    'test_dataloader.dataset.variants=1', 'test_dataloader.dataset.indices=64',
    '--jobs', '1', '--n-boot', '50'
]


def test_tiny_reproduction_and_resume(tmp_path, monkeypatch, capsys):
    script = _script()
    out, work = str(tmp_path / 'out'), str(tmp_path / 'work')
    args = TINY + ['--out-dir', out, '--work-dir', work]
    script.main(args)
    runs = sorted(os.listdir(osp.join(out, 'runs')))
    assert runs == sorted([
        'warmup_dense_seed0.json',
        'tune_art_hs_s0.98_lam5e-05_seed0.json', 'main_dense_seed0.json',
        'main_art_hs_s0.9_seed0.json', 'main_oneshot_s0.9_seed0.json'
    ])
    with open(osp.join(out, 'runs', 'main_art_hs_s0.9_seed0.json')) as f:
        art = json.load(f)
    assert art['lambda_init'] == 5e-5
    assert art['eta'] == pytest.approx(1.05**(160 / 2))  # 2 fine-tune epochs
    assert art['switch_reason'] in ('criterion', 'min_finetune')
    assert art['forced'] == (art['switch_reason'] != 'criterion')
    assert art['sparsity'] == 0.9
    assert art['final_sparsity'] == pytest.approx(0.9, abs=1e-4)
    assert len(art['test_correct']) == 64
    with open(osp.join(out, 'tuning.json')) as f:
        assert json.load(f)['art_hs']['lambda_init'] == 5e-5
    with open(osp.join(out, 'results.json')) as f:
        summary = json.load(f)
    oneshot = next(r for r in summary['rows'] if r['method'] == 'oneshot')
    assert oneshot['diff_seeds']['n'] == 1
    assert oneshot['diff_bootstrap']['method'] == 'paired_bootstrap'
    assert 'forced' in next(r for r in summary['rows']
                            if r['method'] == 'art_hs')
    assert osp.exists(osp.join(out, 'accuracy.png'))
    assert osp.exists(osp.join(out, 'diff_to_hs.png'))

    # resume: finished runs (their JSON) are skipped, a missing one reruns
    os.remove(osp.join(out, 'runs', 'main_oneshot_s0.9_seed0.json'))
    calls = []
    real = script.run_one

    def recording(spec):
        calls.append(spec['name'])
        return real(spec)

    monkeypatch.setattr(script, 'run_one', recording)
    script.main(args)
    assert calls == ['main_oneshot_s0.9_seed0']
    assert osp.exists(osp.join(out, 'runs', 'main_oneshot_s0.9_seed0.json'))

    # --dry-run: every stage finished, the speed from the finished runs' CPU
    # time (not the calibration constant)
    script.main(args + ['--dry-run'])
    printed = capsys.readouterr().out
    assert 'warmup: 1 of 1 runs finished' in printed
    assert 'main: 3 of 3 runs finished' in printed
    assert 'time left (upper bound): 0 iterations' in printed
    assert 'median CPU time of 2 finished warm-up / dense runs' in printed

    # the out dir keeps the options its run names leave out: other ones are
    # refused before any work, naming the option
    with open(osp.join(out, 'run_options.json')) as f:
        assert json.load(f)['schedule']['finetune_epochs'] == 2
    with pytest.raises(SystemExit, match=r'--schedule: .*finetune_epochs'
                       r"': 2.* in the work dir, .*'finetune_epochs': 3"):
        script.main(args + ['--schedule', 'finetune_epochs=3', '--dry-run'])
    with pytest.raises(SystemExit, match=r'\(--cfg-options: .*indices=64 '
                       r'in the work dir, .*indices=32 now\)'):
        script.main(args + ['--stages', 'summary', '--cfg-options',
                            'test_dataloader.dataset.indices=32'])
    with pytest.raises(SystemExit, match='--cfg-options load_from: set by '
                       'the script itself'):
        script.main(args + ['--cfg-options', 'load_from=x.pth'])

    # --complete-seeds: seed 0 has every asked-for row; asking for a
    # sparsity without runs leaves no complete seed, and that is an error
    script.main(args + ['--stages', 'summary', '--complete-seeds'])
    with open(osp.join(out, 'results.json')) as f:
        summary = json.load(f)
    assert summary['seeds'] == [0] and summary['seeds_left_out'] == []
    with pytest.raises(RuntimeError, match='no seed has all main runs'):
        script.main(args + ['--stages', 'summary', '--complete-seeds',
                            '--sparsities', '0.9', '0.98'])

    # a new work dir (new machine) with the tracked run files: the warm-up
    # runs again instead of failing on its missing checkpoint, and says
    # whether it reproduced the weights the finished rows were trained from
    with open(osp.join(out, 'runs', 'warmup_dense_seed0.json')) as f:
        first = json.load(f)
    assert len(first['weights_sha256']) == 64
    os.remove(osp.join(out, 'runs', 'main_dense_seed0.json'))
    os.rename(work, work + '_old')
    calls.clear()
    script.main(args)
    assert calls == ['warmup_dense_seed0', 'main_dense_seed0']
    with open(osp.join(out, 'runs', 'warmup_dense_seed0.json')) as f:
        again = json.load(f)
    assert again['reproduces_previous'] is True  # CPU, one thread, same seed
    assert again['weights_sha256'] == first['weights_sha256']


def test_warmup_digest_backfilled_for_old_run_files(tmp_path):
    """Run files written before the digest get it from the checkpoint."""
    import torch
    script = _script()
    schedule = dict(warmup_epochs=1)
    spec = dict(name='warmup_dense_seed0', kind='warmup', seed=0,
                work_dir=str(tmp_path / 'work'), schedule=schedule,
                out_dir=str(tmp_path / 'out'))
    ckpt = script.warmup_checkpoint(spec['work_dir'], 0, schedule)
    os.makedirs(osp.dirname(ckpt))
    torch.save(dict(state_dict={'w': torch.arange(4.)}, meta={}), ckpt)
    path = osp.join(spec['out_dir'], 'runs', 'warmup_dense_seed0.json')
    os.makedirs(osp.dirname(path))
    with open(path, 'w') as f:
        json.dump(dict(name='warmup_dense_seed0'), f)
    result = script._job(spec)
    assert result['weights_sha256'] == weights_digest(ckpt)
    with open(path) as f:
        assert json.load(f)['weights_sha256'] == result['weights_sha256']
    # another weight, another digest
    torch.save(dict(state_dict={'w': torch.arange(4.) + 1}), ckpt)
    assert weights_digest(ckpt) != result['weights_sha256']


def test_complete_seeds_needs_dense_and_every_row():
    script = _script()

    def plan(methods, sparsities):
        """The main stage's planned runs for seeds 0-2."""
        args = script.parse_args(
            ['--seeds', '0', '1', '2', '--methods', *methods,
             '--sparsities', *map(str, sparsities)])
        args.cfg_options_dict = {}
        return script.stage_specs(args, dict(eta=1.0), 'main')

    def done(*runs):
        return {script.run_name('main', m, s, seed): {} for seed, m, s in runs}

    methods, sparsities = ['dense', 'art_hs', 'oneshot'], [0.9, 0.98]
    full = [(0, 'dense', None)] + [
        (0, m, s) for m in methods[1:] for s in sparsities]
    partial = [(1, 'dense', None), (1, 'art_hs', 0.9), (1, 'art_hs', 0.98),
               (1, 'oneshot', 0.9)]
    no_dense = [(2, m, s) for m in methods[1:] for s in sparsities]
    finished = done(*full, *partial, *no_dense)
    assert complete_seeds(plan(methods, sparsities), finished) == [0]
    # without dense among the methods, seed 2 is complete too
    assert complete_seeds(plan(methods[1:], sparsities), finished) == [0, 2]
    # completeness is relative to the sparsities asked for: seed 1 lacks
    # only one-shot at 98 %
    assert complete_seeds(plan(methods, [0.9]), finished) == [0, 1]
    assert complete_seeds(plan(methods, [0.98]), done(*partial)) == []
