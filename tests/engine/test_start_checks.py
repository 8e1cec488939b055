"""One-line errors for missing data / checkpoints before a run, and the VPP
config's warning when it starts from no dense checkpoint."""
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from vis_helpers import TOY_CONFIG, toy_data_options

from mmsparse.engine.hooks import LoadFromCheckHook
from mmsparse.engine.start_checks import check_run_files, missing_run_files

DENSE = 'configs/mask2former_vit-s_ytvis21.py'
VPP = 'configs/vpp_mask2former_ytvis21.py'


def _with_data(path, data_root):
    cfg = Config.fromfile(path)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
    return cfg


def test_missing_annotation_file_first(tmp_path):
    cfg = Config.fromfile(DENSE)
    missing = missing_run_files(cfg, 'train')
    keys = [key for key, _, _ in missing]
    assert keys[0] == 'train_dataloader.dataset.ann_file'
    assert missing[0][1] == 'data/youtube_vis_2021/annotations/youtube_vis_2021_train_sub.json'
    assert 'val_dataloader.dataset.ann_file' in keys
    assert 'model.backbone.init_cfg.checkpoint' in keys  # the DeiT weights
    with pytest.raises(FileNotFoundError, match=r"^annotation file not found: "
                       r"train_dataloader\.dataset\.ann_file='data/youtube_vis_2021/"
                       r"annotations/youtube_vis_2021_train_sub\.json' \(and 2 more "
                       r"missing file\(s\)\); docs/data_preparation\.md"):
        check_run_files(cfg, 'train')


def test_missing_pretrained_checkpoint_named_by_its_key(toy_ytvis_root, tmp_path):
    cfg = _with_data(VPP, toy_ytvis_root)
    cfg.train_dataloader.dataset.ann_file = 'annotations/youtube_vis_2021_train_sub.json'
    missing = missing_run_files(cfg, 'train')
    assert missing == [('model.backbone.backbone.init_cfg.checkpoint',
                        'checkpoints/deit_small_patch16_224-cd65a155.pth', 'checkpoint')]
    with pytest.raises(FileNotFoundError, match=r'^checkpoint not found: model\.backbone\.backbone'
                       r'\.init_cfg\.checkpoint=.*\("Checkpoints"\)'):
        check_run_files(cfg, 'train')
    # testing neither initialises the backbone nor reads the train / val files
    cfg.load_from = str(tmp_path / 'missing.pth')
    assert missing_run_files(cfg, 'test') == [('load_from', cfg.load_from, 'checkpoint')]
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    cfg.load_from = str(ckpt)
    assert missing_run_files(cfg, 'test') == []
    # remote checkpoints are left to mmengine
    cfg.model.backbone.backbone.init_cfg.checkpoint = 'https://example.org/deit.pth'
    assert missing_run_files(cfg, 'train') == []
    with pytest.raises(ValueError, match="mode must be one of"):
        missing_run_files(cfg, 'val')


def test_toy_config_with_its_data_needs_nothing_else(toy_ytvis_root):
    assert missing_run_files(_with_data(TOY_CONFIG, toy_ytvis_root), 'train') == []


def test_train_tool_without_data_ends_in_one_line(tmp_path):
    """The first command a newcomer types: no data, no checkpoint."""
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', VPP, '--work-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('train.py: annotation file not found: '
                                'train_dataloader.dataset.ann_file=')
    assert 'docs/data_preparation.md' in lines[-1]
    assert 'Traceback' not in proc.stderr
    assert not osp.exists(osp.join(tmp_path, 'vis_data'))  # stopped before the runner


def _runner(load_from=None, resume=False):
    warnings = []
    logger = SimpleNamespace(warning=warnings.append)
    return SimpleNamespace(cfg=Config(dict(load_from=load_from, resume=resume)),
                           logger=logger), warnings


def test_load_from_check_hook():
    hook = LoadFromCheckHook(reason='VPP fine-tunes the dense model')
    runner, warnings = _runner()
    hook.before_train(runner)
    assert warnings == ['LoadFromCheckHook: training starts from no checkpoint (load_from=None), '
                        'but VPP fine-tunes the dense model; set load_from to its checkpoint '
                        '(--cfg-options load_from=PATH)']
    for kwargs in (dict(load_from='dense.pth'), dict(resume=True)):
        runner, warnings = _runner(**kwargs)
        hook.before_train(runner)
        assert warnings == []
    strict = LoadFromCheckHook(action='error')
    with pytest.raises(ValueError, match='^LoadFromCheckHook: training starts from no checkpoint'):
        strict.before_train(_runner()[0])
    with pytest.raises(ValueError, match=r"^LoadFromCheckHook: action must be one of "
                       r"\('warn', 'error'\), got 'stop'"):
        LoadFromCheckHook(action='stop')
    with pytest.raises(ValueError, match='reason must be a non-empty string'):
        LoadFromCheckHook(reason='')


@pytest.mark.parametrize('path', [VPP, 'configs/vpp_mask2former_ytvis21_pkr0.4.py',
                                  'configs/composed/p3b-vpp_mask2former_vit-s_ytvis21.py'])
def test_vpp_configs_warn_without_dense_checkpoint(path):
    hooks = [h for h in Config.fromfile(path).custom_hooks if h.type == 'LoadFromCheckHook']
    assert len(hooks) == 1 and hooks[0].get('action', 'warn') == 'warn'
    assert 'configs/mask2former_vit-s_ytvis21.py' in hooks[0].reason


def test_train_tool_warns_on_toy_vpp_started_from_scratch(toy_ytvis_root, tmp_path):
    """A real run: the hook's line is in the log of a 1-iteration training."""
    config = tmp_path / 'toy_vpp_check.py'
    config.write_text(
        f"_base_ = '{osp.abspath('configs/toy/vpp_mask2former_vit_toy-ytvis21.py')}'\n"
        "custom_hooks = _base_.custom_hooks + [\n"
        "    dict(type='LoadFromCheckHook', reason='the toy VPP test')]\n")
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', 'train_cfg.max_iters=1', 'train_cfg.val_interval=100',
         'default_hooks.checkpoint.interval=100'] + toy_data_options(toy_ytvis_root),
        capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'LoadFromCheckHook: training starts from no checkpoint (load_from=None), but ' \
        'the toy VPP test' in out
