"""Real runs of a toy config that inherits the VPP config and changes only the
pixel decoder: Runner.train (2 iterations) + Runner.test in process, and
tools/dist_train.sh with 2 CPU processes."""
import os.path as osp

import pytest
from mmengine.config import Config
from test_vpp_runner import dist_train_two_processes
from vis_helpers import ROOT

TOY = osp.join(ROOT, 'configs', 'toy',
               'vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder.py')
VARIANTS = {
    'configs/vpp_mask2former_ytvis21_keepset-decoder.py': ('input', 'keep_set'),
    'configs/vpp_mask2former_ytvis21_keepset-decoder-reuse.py':
    ('previous', 'keep_set'),
    'configs/vpp_mask2former_ytvis21_image-decoder.py': ('input', 'image'),
    TOY: ('input', 'keep_set'),
    TOY.replace('keepset-decoder', 'keepset-decoder-reuse'):
    ('previous', 'keep_set'),
    TOY.replace('keepset-decoder', 'image-decoder'): ('input', 'image'),
    'configs/vpp_mask2former_ytvis21_keepset-decoder-densefpn.py':
    ('input', 'keep_set'),
    TOY.replace('keepset-decoder', 'keepset-decoder-densefpn'):
    ('input', 'keep_set'),
}


@pytest.mark.parametrize('path', sorted(VARIANTS))
def test_configs_change_only_the_pixel_decoder(path):
    cfg = Config.fromfile(path)
    base = Config.fromfile(
        path.split('_keepset-decoder')[0].split('_image-decoder')[0] + '.py')
    dec, base_dec = cfg.model.track_head.pixel_decoder, \
        base.model.track_head.pixel_decoder
    assert dec.type == 'KeepSetPixelDecoder'
    assert (dec.carry, dec.query_select) == VARIANTS[path]
    assert dec.get('update_mask_features', True) == ('densefpn' not in path)
    assert {k: v for k, v in dec.items() if k in base_dec and k != 'type'} \
        == {k: v for k, v in base_dec.items() if k != 'type'}
    cfg.model.track_head.pop('pixel_decoder')
    base.model.track_head.pop('pixel_decoder')
    assert cfg.model == base.model
    assert cfg.train_dataloader == base.train_dataloader
    assert cfg.optim_wrapper == base.optim_wrapper


@pytest.fixture(scope='module')
def keep_set_run(toy_ytvis_root, tmp_path_factory):
    """Train 2 iterations and test the toy keep-set config (temporal reuse)."""
    from mmengine.runner import Runner
    work = str(tmp_path_factory.mktemp('keep_set_run'))
    cfg = Config.fromfile(TOY)
    for dl in ('train_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = toy_ytvis_root
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_dataloader.batch_size = 1
    cfg.train_cfg.max_iters = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.model.track_head.pixel_decoder.carry = 'previous'
    cfg.work_dir = work
    runner = Runner.from_cfg(cfg)
    seen = []
    decoder = runner.model.track_head.pixel_decoder
    decoder.register_forward_pre_hook(
        lambda m, args: seen.append((m.training, args[0].keep.clone())))
    runner.train()
    metrics = runner.test()
    return runner, metrics, seen


def test_trains_and_predicts_with_the_keep_set(keep_set_run):
    runner, metrics, seen = keep_set_run
    assert 0.0 <= metrics['youtube_vis/segm_mAP'] <= 1.0
    train = [k for t, k in seen if t]
    test = [k for t, k in seen if not t]
    assert len(train) == 2 and len(test) == 3  # 2 iterations, 3 videos
    n = 12 * 20  # toy patch grid
    for keep in train + test:
        assert keep[0].sum() == n  # the first frame of a clip/video dense
        # the paper's last stage keeps round(0.358 * 240) = 86 patches
        assert (keep[1:].sum(1) == 86).all()


def test_dist_train_two_cpu_processes(toy_ytvis_root, tmp_path):
    line, ckpt = dist_train_two_processes(
        TOY, str(tmp_path / 'dist'), toy_ytvis_root, 29533,
        ['model.track_head.pixel_decoder.carry=previous'])
    assert 'loss_vpp_select' in line
    assert any(k.startswith('track_head.pixel_decoder.encoder.')
               for k in ckpt['state_dict'])
