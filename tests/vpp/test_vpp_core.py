"""Unit tests of mmsparse.vpp (plain torch; tiny blocks)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsparse.vpp import (FrameStats, TemporalMapping, VideoPatchPruner,
                          check_schedule, gather_tokens, manhattan_prior,
                          num_keep, patch_keep_ratio, scatter_tokens,
                          schedule_pkr, smooth_logits, token_positions,
                          tokens_per_block, topk_keep_mask)

C, L, H, W = 16, 6, 6, 8
N = H * W


class TinyBlock(nn.Module):
    """Pre-norm attention + MLP block taking a (B, L) bool key mask."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Linear(dim, dim)

    def forward(self, x, attn_mask=None):
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        if attn_mask is not None:
            attn_mask = attn_mask[:, None, :]
        x = x + self.proj(
            F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask))
        return x + self.mlp(x).tanh()


@pytest.fixture
def blocks():
    torch.manual_seed(0)
    return nn.ModuleList([TinyBlock(C) for _ in range(L)])


def frames(batch=2, scale=0.3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 1 + N, C, generator=g) * scale
            for _ in range(3)]


def test_num_keep_rounds_and_topk_is_exact():
    assert num_keep(240, 0.7) == 168  # 0.7 * 240 = 167.99999999999997
    assert num_keep(240, 0.4) == 96
    assert num_keep(10, 0.01) == 1
    scores = torch.rand(3, 50)
    valid = torch.rand(3, 50) > 0.3
    valid[:, :20] = True
    mask = topk_keep_mask(scores, 20, valid)
    assert mask.sum(1).tolist() == [20, 20, 20]
    assert not (mask.bool() & ~valid).any()


def test_gather_scatter_roundtrip_keeps_grid_order():
    x = torch.randn(2, 1 + N, C)
    idx = torch.stack([torch.randperm(N)[:10].sort().values for _ in range(2)])
    pos = token_positions(idx, 1)
    assert pos[:, 0].tolist() == [0, 0]
    kept = gather_tokens(x, pos)
    assert torch.equal(kept[1, 1:], x[1, idx[1] + 1])
    back = scatter_tokens(torch.zeros_like(x), pos, kept)
    assert torch.equal(back[0, pos[0]], x[0, pos[0]])
    # nothing but the kept positions was written
    untouched = torch.ones(back.shape[:2], dtype=torch.bool)
    untouched[torch.arange(2)[:, None], pos] = False
    assert not back[untouched].any()
    torch.testing.assert_close(back.abs().sum(), kept.abs().sum())


def test_schedule_checks_and_pkr():
    assert check_schedule(0.4, 1, 12) == ((0.4, ), (1, ))
    with pytest.raises(ValueError, match='^Owner: keep_ratio'):
        check_schedule(1.5, 1, 12, owner='Owner')
    for ratio in (0, 1.5, -0.1, 'a', [0.5, 0.7], [1.0, 0.5]):
        with pytest.raises(ValueError, match='keep_ratio'):
            check_schedule(ratio, 1 if not isinstance(ratio, list) else
                           [1, 2], 12)
    for layer in (-1, 12, 1.5, [3, 2]):
        with pytest.raises(ValueError, match='prune_layer'):
            check_schedule(0.4 if not isinstance(layer, list) else
                           [0.5, 0.4], layer, 12)
    with pytest.raises(ValueError, match='same length'):
        check_schedule([0.7, 0.5], 1, 12)
    # the paper's ViT-S schedule: about 0.54
    pkr = schedule_pkr([0.7, 0.56, 0.448, 0.358], [1, 3, 6, 9], 12)
    assert abs(pkr - (1 + 2 * .7 + 3 * .56 + 3 * .448 + 3 * .358) / 12) < 1e-3
    counts = tokens_per_block(240, [0.4], [1], 6)
    assert counts == [240, 96, 96, 96, 96, 96]
    assert patch_keep_ratio(counts, 240) == pytest.approx((1 + 5 * .4) / 6)


def test_manhattan_prior_and_smoothing():
    prior = manhattan_prior(3, 4)
    assert prior.shape == (12, 12)
    assert torch.allclose(prior.diagonal(), torch.ones(12))
    # opposite corners: d = 2 -> log10(1e-6)
    assert prior[0, 11].item() == pytest.approx(-6, abs=1e-3)
    # nearer patches get a larger prior
    assert prior[0, 1] > prior[0, 2] > prior[0, 3]
    x = torch.zeros(1, 12, 2)
    x[0, 5, 0] = 9.
    y = smooth_logits(x, (3, 4), 3)
    assert y[0, 5, 0] == pytest.approx(1.0)  # 9 / 9
    assert y[0, 0, 0] == pytest.approx(1.0)  # neighbour of 5
    assert y[0, 3, 0] == 0  # two columns away
    assert y[0, :, 0].sum() == pytest.approx(9.)
    x = torch.zeros(1, 12, 2)
    x[0, 0, 0] = 9.  # a corner: replicate padding repeats it 4 times
    assert smooth_logits(x, (3, 4), 3)[0, 0, 0] == pytest.approx(4.)


def test_mapping_prefers_matching_and_valid_keys():
    m = TemporalMapping().eval()
    key = torch.eye(N)[None] * 10  # distinct keys
    value = torch.arange(N, dtype=torch.float)[None, :, None]
    out = m(key.clone(), key, value, (H, W))
    assert torch.equal(out[0, :, 0], value[0, :, 0])
    valid = torch.ones(1, N, dtype=torch.bool)
    valid[0, 5] = False
    out = m(key.clone(), key, value, (H, W), valid)
    assert out[0, 5, 0] != 5 and out[0, 4, 0] == 4


@pytest.mark.parametrize('selector', ['temporal', 'image', 'random'])
@pytest.mark.parametrize('schedule', [(0.4, 1), ([0.7, 0.5, 0.3], [1, 3, 4])])
def test_exact_keep_count_and_first_frame_dense(blocks, selector, schedule):
    pruner = VideoPatchPruner(C, L, *schedule, selector, smooth_kernel=3)
    x0, x1, _ = frames()
    for train in (True, False):
        pruner.train(train)
        with torch.set_grad_enabled(train):
            y0, prior, st0 = pruner(x0, (H, W), blocks, None)
            y1, _, st1 = pruner(x1, (H, W), blocks, prior)
        assert not st0.pruned and st0.counts == [N] * L
        ref = x0
        for blk in blocks:
            ref = blk(ref)
        assert torch.equal(y0, ref)  # first frame: the dense blocks
        last = num_keep(N, pruner.keep_ratios[-1])
        assert st1.pruned and st1.counts[-1] == last
        assert st1.keep_mask.sum(1).tolist() == [last, last]
        assert st1.counts[:pruner.prune_layers[0]] == \
            [N] * pruner.prune_layers[0]


@pytest.mark.parametrize('selector', ['temporal', 'image'])
def test_training_equals_inference_without_noise(blocks, selector):
    """Masked training (soft ST, key padding) == gather/scatter inference
    once the Gumbel noise vanishes (tau -> inf): the hard limit."""
    pruner = VideoPatchPruner(C, L, [0.6, 0.3], [1, 3], selector,
                              smooth_kernel=3, tau_match=1e9, tau_select=1e9)
    x0, x1, x2 = frames()
    pruner.train()
    outs_train, stats_train, prior = [], [], None
    for x in (x0, x1, x2):
        y, prior, st = pruner(x, (H, W), blocks, prior)
        outs_train.append(y)
        stats_train.append(st)
    pruner.eval()
    prior = None
    with torch.no_grad():
        for x, y_t, st_t in zip((x0, x1, x2), outs_train, stats_train):
            y, prior, st = pruner(x, (H, W), blocks, prior)
            assert torch.allclose(y, y_t, atol=1e-5)
            if st.pruned:
                assert torch.equal(st.keep_mask, st_t.keep_mask)


def test_gradient_reaches_temporal_mapping(blocks):
    pruner = VideoPatchPruner(C, L, 0.5, 1, 'temporal', smooth_kernel=3)
    pruner.train()
    x0, x1, _ = frames(scale=0.1)
    y0, prior, st0 = pruner(x0, (H, W), blocks, None)
    prior.value.retain_grad()
    y1, _, st1 = pruner(x1, (H, W), blocks, prior)
    loss = y1.pow(2).mean() + pruner.loss([st0, st1])['loss_vpp_select']
    loss.backward()
    head = pruner.scorers[0]
    assert head.mlp[0].weight.grad.abs().sum() > 0
    assert head.norm.weight.grad.abs().sum() > 0
    # through the mapped values: into the previous frame's deep features
    assert prior.value.grad.abs().sum() > 0
    # through the soft assignment into the affinity's queries and keys
    m = TemporalMapping(gumbel_noise=False).train()
    q = (torch.randn(1, N, C) * 0.1).requires_grad_(True)
    k = (torch.randn(1, N, C) * 0.1).requires_grad_(True)
    v = torch.randn(1, N, C)
    out = m(q, k, v, (H, W))
    # forward value: exactly the gathered (argmax) value
    idx = m.affinity(q, k, (H, W)).argmax(-1)
    assert torch.allclose(out, v[0, idx[0]][None], atol=1e-6)
    (out * torch.randn_like(out)).sum().backward()
    assert q.grad.abs().sum() > 0 and k.grad.abs().sum() > 0


def test_straight_through_gate_is_hard_forward(blocks):
    pruner = VideoPatchPruner(C, L, 0.5, 1, 'image', smooth_kernel=1)
    pruner.train()
    x0, x1, _ = frames()
    _, prior, _ = pruner(x0, (H, W), blocks, None)
    y1, _, st = pruner(x1, (H, W), blocks, prior)
    # pruned patches pass through from block 1's input (fill-back)
    x = x1
    x = blocks[0](x)
    pruned = ~st.keep_mask
    assert torch.allclose(y1[:, 1:][pruned], x[:, 1:][pruned], atol=1e-6)


def test_random_selector_has_no_parameters_and_no_loss(blocks):
    pruner = VideoPatchPruner(C, L, 0.5, 1, 'random')
    assert sum(p.numel() for p in pruner.parameters()) == 0
    pruner.train()
    x0, x1, _ = frames()
    _, prior, s0 = pruner(x0, (H, W), blocks, None)
    _, _, s1 = pruner(x1, (H, W), blocks, prior)
    assert pruner.loss([s0, s1]) == {}


@pytest.mark.parametrize('kwargs,match', [
    (dict(selector='foo'), 'selector must be one of'),
    (dict(prior_layer=L), 'prior_layer'),
    (dict(smooth_kernel=4), 'smooth_kernel'),
    (dict(keep_ratio=1.2), r'keep_ratio must be in \(0, 1\]'),
    (dict(prune_layer=6), r'prune_layer must be an int in \[0, 5\]'),
    (dict(keep_ratio=[0.5, 0.6], prune_layer=[1, 2]), 'strictly decreasing'),
    (dict(keep_ratio=[0.5], prune_layer=[1, 2]), 'same length'),
    (dict(keep_ratio=[]), 'must not be empty'),
    (dict(tau_match=0), 'tau_match'),
    (dict(tau_select=-1), 'tau_select'),
    (dict(loss_weight=-1), 'loss_weight'),
    (dict(map_loss_weight='x'), 'map_loss_weight'),
    (dict(soft_target=1.0), 'soft_target'),
])
def test_bad_arguments_name_the_class(kwargs, match):
    args = dict(embed_dims=C, num_layers=L, keep_ratio=0.5, prune_layer=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match='^VideoPatchPruner: .*' + match):
        VideoPatchPruner(**args)


def test_bad_blocks_and_dense():
    dense = VideoPatchPruner(C, L, 1.0, 1)
    assert dense.dense and len(dense.scorers) == 0
    p = VideoPatchPruner(C, L, 0.5, 1)
    with pytest.raises(ValueError, match='blocks'):
        p(torch.zeros(1, 1 + N, C), (H, W), [nn.Identity()] * 3, None)


def test_selection_loss_has_the_official_weighting():
    """40 * (10 * (s0 - 0.5)^2 + sum_s (k_s - r_s)^2) / (10 + S), summed
    over the pruned frames (the official code adds one loss per frame)."""
    pruner = VideoPatchPruner(C, L, [0.7, 0.5, 0.3], [1, 3, 4], 'temporal')
    frame = FrameStats(True, [N] * L, N,
                       soft_keep=[torch.tensor(0.3), torch.tensor(0.6),
                                  torch.tensor(0.2)])
    dense = FrameStats(False, [N] * L, N)
    one = 40 * (10 * 0.2**2 + 0.1**2 + 0.1**2) / 12
    loss = pruner.loss([dense, frame])['loss_vpp_select']
    assert loss.item() == pytest.approx(one)
    assert pruner.loss([dense, frame, frame])['loss_vpp_select'].item() == \
        pytest.approx(2 * one)
    # one stage: 40 x the Map-SM term; weights are arguments
    single = VideoPatchPruner(C, L, 0.4, 1, loss_weight=4.,
                              map_loss_weight=3.)
    frame = FrameStats(True, [N] * L, N, soft_keep=[torch.tensor(0.3)])
    assert single.loss([frame])['loss_vpp_select'].item() == \
        pytest.approx(4 * 0.2**2)


def test_selection_loss_terms_from_a_forward(blocks):
    """Stage 0: mean soft keep; later stages: the expected kept share of the
    grid (soft score x the earlier gate), which the loss alone trains."""
    pruner = VideoPatchPruner(C, L, [0.7, 0.5, 0.3], [1, 3, 4], 'image',
                              smooth_kernel=3, gumbel_noise=False).train()
    x0, x1, _ = frames()
    _, prior, st0 = pruner(x0, (H, W), blocks, None)
    _, _, st1 = pruner(x1, (H, W), blocks, prior)
    assert st0.soft_keep == [] and len(st1.soft_keep) == 3
    s0, k1, k2 = st1.soft_keep
    assert 0 < s0 < 1
    # a later stage keeps in expectation less than the patches it sees
    assert 0 < k1 < num_keep(N, 0.7) / N and 0 < k2 < num_keep(N, 0.5) / N
    pruner.loss([st0, st1])['loss_vpp_select'].backward()
    for head in pruner.scorers:
        assert head.mlp[0].weight.grad.abs().sum() > 0
