"""The official VPP options: the training clip's run order and test-time
Gumbel noise."""
import copy
import random

import pytest
import torch
from mmdet.structures import TrackDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmsparse.models.backbones import VPPBackbone
from mmsparse.registry import MODELS
from mmsparse.vpp import (ScoreHead, TemporalMapping, VideoPatchPruner,
                          clip_run_order, num_keep)
from mmsparse.vpp.keep_set import KeepSetFeatures

TOY = 'configs/toy/vpp_mask2former_vit_toy-ytvis21.py'


# ------------------------------------------------------------- run order
def test_official_order_of_a_three_frame_clip():
    """The later reference frame first (dense), then the earlier one, then
    the key frame, for each position of the key in the time-sorted clip."""
    assert clip_run_order(3, 0, 'official') == [2, 1, 0]
    assert clip_run_order(3, 1, 'official') == [2, 0, 1]
    assert clip_run_order(3, 2, 'official') == [1, 0, 2]
    assert clip_run_order(3, 1, 'forward') == [0, 1, 2]
    assert clip_run_order(1, 0, 'official') == [0]


@pytest.mark.parametrize('num_frames', [2, 3, 4, 5])
def test_official_order_is_a_permutation_with_a_backward_first_hop(
        num_frames):
    rng = random.Random(0)
    for key in range(num_frames):
        order = clip_run_order(num_frames, key, 'official')
        assert sorted(order) == list(range(num_frames))
        assert order[-1] == key
        if num_frames > 2:
            assert order[1] < order[0]  # first hop backward in time
    # no key given: drawn, every position eventually
    keys = {clip_run_order(3, None, 'official', rng)[-1] for _ in range(60)}
    assert keys == {0, 1, 2}


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_frames=0), 'num_frames must be an int >= 1'),
    (dict(num_frames=3, order='backward'), "order must be one of"),
    (dict(num_frames=3, key_index=3, order='official'),
     r'key_index must be an int in \[0, 2\]'),
])
def test_run_order_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        clip_run_order(**kwargs)


def build_toy_model(order):
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY)
    cfg.model.train_frame_order = order
    cfg.model.track_head.num_frames = 3
    cfg.model.backbone.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train()


def test_toy_config_keeps_time_order_and_bad_order_raises():
    assert Config.fromfile(TOY).model.train_frame_order == 'forward'
    with pytest.raises(ValueError, match='VPPMask2FormerVideo: '
                       'train_frame_order must be one of'):
        build_toy_model('backward')


@pytest.mark.parametrize('order, key, dense_time', [
    ('official', 0, 2), ('official', 1, 2), ('official', 2, 1),
    ('forward', 1, 0)])
def test_model_runs_the_backbone_in_run_order_and_the_head_in_time_order(
        order, key, dense_time):
    """The dense (first-run) frame is the later reference frame under the
    official order; its features reach the head at its time position and
    equal the wrapped backbone's dense features of that frame."""
    model = build_toy_model(order)
    seen = {}
    model.track_head.loss = lambda feats, samples: seen.update(
        feats=feats) or {}
    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(2, 3, 3, 64, 96, generator=g)  # 2 clips x 3 frames
    samples = []
    for _ in range(2):
        sample = TrackDataSample()
        sample.set_metainfo(dict(key_frames_inds=[key]))
        samples.append(sample)
    losses = model.loss(inputs, samples)
    assert 'loss_vpp_select' in losses
    feats = seen['feats']
    run = model.backbone.last_stats
    assert [s.pruned for s in run] == [False, True, True]
    with torch.no_grad():
        dense = model.backbone.backbone(inputs[:, dense_time])
    for level, ref in zip(feats, dense):
        per_clip = level.unflatten(0, (2, 3))
        torch.testing.assert_close(per_clip[:, dense_time], ref)
        for t in set(range(3)) - {dense_time}:  # pruned frames differ
            assert not torch.allclose(per_clip[:, t], ref)
    if isinstance(feats, KeepSetFeatures) and feats.keep is not None:
        keep = feats.keep.unflatten(0, (2, 3))
        assert bool((keep[:, dense_time] == 1).all())
        pruned = [t for t in range(3) if t != dense_time]
        assert bool((keep[:, pruned] == 0).any())


# ------------------------------------------------- Gumbel noise at test
def test_test_gumbel_noise_in_mapping_and_score_head():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 12, 8).unbind(0)
    det = TemporalMapping(tau=0.05).eval()
    noisy = TemporalMapping(tau=0.05, test_gumbel_noise=True).eval()
    a = det(q, k, v, (3, 4))
    assert torch.equal(a, det(q, k, v, (3, 4)))  # deterministic by default
    draws = [noisy(q, k, v, (3, 4)) for _ in range(5)]
    assert any(not torch.equal(d, a) for d in draws)
    for d in draws:  # still one previous-frame token per patch
        assert bool((d[..., None, :] == v[:, None]).all(-1).any(-1).all())
    head = ScoreHead(8, 4, tau=0.5).eval()
    x = torch.randn(1, 12, 8)
    assert torch.equal(head(x), head(x))
    head.test_gumbel_noise = True
    assert not torch.equal(head(x), head(x))


def test_pruner_with_test_noise_keeps_exact_counts():
    torch.manual_seed(0)
    blocks = [torch.nn.Identity() for _ in range(4)]

    def run(pruner):
        x = torch.randn(2, 1 + 24, 16, generator=torch.Generator()
                        .manual_seed(3))
        _, prior, _ = pruner(x, (4, 6), blocks)
        _, _, stats = pruner(x + 0.1, (4, 6), blocks, prior)
        return stats

    kw = dict(embed_dims=16, num_layers=4, keep_ratio=[0.5, 0.25],
              prune_layer=[1, 2], smooth_kernel=3, tau_select=0.2,
              tau_match=0.2)
    det = VideoPatchPruner(**kw).eval()
    stats = run(det)
    assert torch.equal(stats.keep_mask, run(det).keep_mask)
    det.set_test_gumbel_noise(True)
    masks = [run(det).keep_mask for _ in range(6)]
    assert any(not torch.equal(m, stats.keep_mask) for m in masks)
    for m in masks:
        assert (m.sum(1) == num_keep(24, 0.25)).all()
    assert all(s.test_gumbel_noise for s in det.scorers)
    assert VideoPatchPruner(**kw, test_gumbel_noise=True).mapping \
        .test_gumbel_noise
    with pytest.raises(ValueError, match='test_gumbel_noise must be a bool'):
        VideoPatchPruner(**kw, test_gumbel_noise='yes')


def test_backbone_passes_test_gumbel_noise():
    vit = dict(type='ViTPyramid',
               arch=dict(embed_dims=32, num_layers=4, num_heads=2,
                         feedforward_channels=64),
               img_size=(64, 96), drop_path_rate=0., out_channels=16)
    on = VPPBackbone(copy.deepcopy(vit), keep_ratio=[0.5, 0.25],
                     prune_layer=[1, 2], test_gumbel_noise=True)
    assert on.pruner.mapping.test_gumbel_noise
    assert all(s.test_gumbel_noise for s in on.pruner.scorers)
    off = VPPBackbone(copy.deepcopy(vit), keep_ratio=0.5)
    assert not off.pruner.mapping.test_gumbel_noise
    with pytest.raises(ValueError, match='VPPBackbone: test_gumbel_noise'):
        VPPBackbone(copy.deepcopy(vit), keep_ratio=0.5, test_gumbel_noise=1)
