"""KeepSetPixelDecoder: the encoder updates only the kept queries.

Checked against independent references: mmdet's MSDeformAttnPixelDecoder
with the same weights (every position kept, or no keep set), and a masked
dense computation (every query through mmdet's own encoder layer, the
result taken only at kept positions: deformable attention treats queries
independently, so that equals updating only the kept ones).
"""
import pytest
import torch
from mmdet.models.layers import MSDeformAttnPixelDecoder
from mmengine.config import ConfigDict

from mmsparse.models.vis import KeepSetPixelDecoder
from mmsparse.vpp.keep_set import (KeepSetFeatures, carry_gate, conv3x3_at,
                                   dilate_gate, level_gates, masked_group_norm,
                                   padded_indices, scatter_rows)

HW = (6, 10)  # stride-16 grid of 96 x 160 frames
C = 32


def decoder_cfg(num_layers=2, **override):
    cfg = dict(
        in_channels=[16, 24, 32, 32],
        strides=[4, 8, 16, 32],
        feat_channels=C,
        out_channels=C,
        num_outs=3,
        norm_cfg=dict(type='GN', num_groups=8),
        act_cfg=dict(type='ReLU'),
        encoder=dict(
            num_layers=num_layers,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=C, num_heads=4, num_levels=3, num_points=4,
                    im2col_step=64, dropout=0.0, batch_first=True),
                ffn_cfg=dict(
                    embed_dims=C, feedforward_channels=64, num_fcs=2,
                    ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)))),
        positional_encoding=dict(num_feats=C // 2, normalize=True))
    cfg.update(override)
    return ConfigDict(cfg)


def make_feats(frames=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = HW
    shapes = [(16, 4 * h, 4 * w), (24, 2 * h, 2 * w), (32, h, w),
              (32, (h + 1) // 2, (w + 1) // 2)]
    return [torch.randn(frames, *s, generator=g) for s in shapes]


def random_keep(frames, ratio=0.3, seed=1, dense_first=True):
    g = torch.Generator().manual_seed(seed)
    n = HW[0] * HW[1]
    keep = torch.zeros(frames, n)
    for f in range(frames):
        keep[f, torch.randperm(n, generator=g)[:round(ratio * n)]] = 1
    if dense_first:
        keep[0] = 1
    return keep


def build_pair(**kwargs):
    torch.manual_seed(0)
    sparse = KeepSetPixelDecoder(**decoder_cfg(), **kwargs)
    sparse.init_weights()
    dense = MSDeformAttnPixelDecoder(**decoder_cfg())
    dense.load_state_dict(sparse.state_dict(), strict=False)
    return sparse.eval(), dense.eval()


def masked_reference(decoder, feats, keep, clip_len=1, previous=False):
    """Every query through mmdet's layer; kept positions take the result,
    the others their input (or the previous frame's layer output)."""
    enc = decoder._encoder_inputs(feats)
    kw = enc['kwargs']
    gate = level_gates(keep, HW, enc['sizes'])
    B = keep.shape[0]
    out = torch.empty_like(kw['query'])
    prev = None
    for b in range(B):
        sl = slice(b, b + 1)
        x = kw['query'][sl]
        states = []
        for i, layer in enumerate(decoder.encoder.layers):
            y = layer(query=x, query_pos=kw['query_pos'][sl],
                      key_padding_mask=kw['key_padding_mask'][sl],
                      spatial_shapes=kw['spatial_shapes'],
                      level_start_index=kw['level_start_index'],
                      valid_ratios=kw['valid_ratios'][sl],
                      reference_points=kw['reference_points'][sl])
            use_prev = previous and prev is not None and b % clip_len
            carry = prev[i] if use_prev else x
            x = torch.where(gate[sl, :, None] > 0.5, y, carry)
            states.append(x)
        prev = states
        out[b] = x[0]
    return decoder._fpn(feats, out, enc['sizes'], None, HW)


def assert_outputs_close(a, b, atol=1e-5):
    torch.testing.assert_close(a[0], b[0], atol=atol, rtol=1e-4)
    for x, y in zip(a[1], b[1]):
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)


# ----------------------------------------------------------- keep-set maths
def test_padded_indices_and_scatter_change_only_kept_rows():
    mask = torch.tensor([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
                        dtype=torch.bool)
    idx, valid = padded_indices(mask)
    assert idx.shape == (3, 3)
    assert idx[0].tolist() == [1, 3, 4] and valid[0].all()
    assert idx[1].tolist() == [0, 0, 0]
    assert valid[1].tolist() == [True, False, False]
    assert not valid[2].any()
    full = torch.arange(15.).view(3, 5, 1)
    new = -torch.ones(3, 3, 1)
    out = scatter_rows(full, idx, valid, new)
    expect = torch.where(mask[..., None], -1., full)
    torch.testing.assert_close(out, expect)


def test_carry_gate_to_finer_and_coarser_maps():
    gate = torch.zeros(1, 6 * 10)
    gate[0, 2 * 10 + 3] = 1  # row 2, col 3
    fine = carry_gate(gate, HW, (12, 20)).view(12, 20)
    assert fine.sum() == 4 and fine[4:6, 6:8].all()
    coarse = carry_gate(gate, HW, (3, 5)).view(3, 5)
    assert coarse.sum() == 1 and coarse[1, 1] == 1
    grown = dilate_gate(gate, HW, 1).view(6, 10)
    assert grown.sum() == 9 and grown[1:4, 2:5].all()


def test_conv3x3_at_positions_equals_conv2d():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 7, 9, generator=g)
    weight, bias = torch.randn(4, 5, 3, 3, generator=g), torch.randn(4)
    ref = torch.nn.functional.conv2d(x, weight, bias, padding=1)
    idx = torch.tensor([[0, 8, 30, 62], [62, 54, 9, 10]])  # corners, edges
    out = conv3x3_at(x, idx, weight, bias)
    expect = ref.flatten(2).transpose(1, 2).gather(
        1, idx[..., None].expand(-1, -1, 4))
    torch.testing.assert_close(out, expect)


def test_masked_group_norm_uses_only_masked_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 30, 8, generator=g)
    weight, bias = torch.randn(8), torch.randn(8)
    full = masked_group_norm(x, torch.ones(2, 30, dtype=torch.bool), 4,
                             weight, bias)
    ref = torch.nn.functional.group_norm(x.transpose(1, 2), 4, weight, bias)
    torch.testing.assert_close(full, ref.transpose(1, 2))
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[0, :12], mask[1, 5:25] = True, True
    out = masked_group_norm(x, mask, 4, weight, bias)
    for b in range(2):
        sub = x[b, mask[b]].T[None]  # (1, C, K): the kept positions alone
        ref = torch.nn.functional.group_norm(sub, 4, weight, bias)[0].T
        torch.testing.assert_close(out[b, mask[b]], ref)


def test_gate_carries_gradients():
    gate = torch.rand(2, 60, requires_grad=True)
    level_gates(gate, HW, [(3, 5), (6, 10), (12, 20)], margin=1).sum() \
        .backward()
    assert gate.grad is not None and gate.grad.abs().sum() > 0


# ------------------------------------------------------------------ decoder
def test_every_position_kept_or_no_keep_set_equals_dense():
    sparse, dense = build_pair()
    feats = make_feats()
    with torch.no_grad():
        ref = dense(feats)
        all_kept = sparse(KeepSetFeatures(feats, torch.ones(2, 60), HW, 2))
        no_keep = sparse(KeepSetFeatures(feats))
    assert_outputs_close(all_kept, ref)
    assert_outputs_close(no_keep, ref)


@pytest.mark.parametrize('carry', ['input', 'previous'])
def test_sparse_encoder_equals_masked_dense_reference(carry):
    sparse, _ = build_pair(carry=carry, update_mask_features=False)
    feats = make_feats(frames=3)
    keep = random_keep(3)
    with torch.no_grad():
        out = sparse(KeepSetFeatures(feats, keep, HW, clip_len=3))
        ref = masked_reference(sparse, feats, keep, clip_len=3,
                               previous=carry == 'previous')
    assert_outputs_close(out, ref)


def test_sparse_mask_features_equal_a_per_frame_reference():
    sparse, _ = build_pair()
    feats = make_feats(frames=3)
    keep = random_keep(3)
    with torch.no_grad():
        mask_feature, multi = sparse(KeepSetFeatures(feats, keep, HW, 3))
        enc = sparse._encoder_inputs(feats)
        gate = level_gates(keep, HW, enc['sizes'])
        memory = sparse._sparse_encode(enc, gate, 3)
        _, (coarse, mid, fine) = sparse._fpn(feats, memory, enc['sizes'],
                                             None, HW)
        conv = sparse.output_convs[0]
        y = sparse.lateral_convs[0](feats[0]) + torch.nn.functional \
            .interpolate(fine, size=feats[0].shape[-2:], mode='bilinear',
                         align_corners=False)
        expect = []
        for b in range(3):
            m = carry_gate(keep[b:b + 1], HW, y.shape[-2:])[0] > 0.5
            z = conv.conv(y[b:b + 1]).flatten(2)[:, :, m]  # (1, C, K)
            z = conv.activate(torch.nn.functional.group_norm(
                z, conv.norm.num_groups, conv.norm.weight, conv.norm.bias))
            out = y[b].flatten(1).clone()
            out[:, m] = z[0]
            expect.append(out.view_as(y[b]))
        expect = sparse.mask_feature(torch.stack(expect))
    torch.testing.assert_close(mask_feature, expect, atol=1e-5, rtol=1e-4)
    for a, b in zip(multi, (coarse, mid, fine)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('carry', ['input', 'previous'])
def test_training_mix_equals_inference_gather(carry):
    sparse, _ = build_pair(carry=carry)
    feats = make_feats(frames=4)
    keep = random_keep(4)
    keep[2] = 1  # two clips of 2: frames 0 and 2 dense
    inp = KeepSetFeatures(feats, keep, HW, clip_len=2)
    with torch.no_grad():
        gathered = sparse(inp)
        sparse.train()
        mixed = sparse(inp)
    assert_outputs_close(mixed, gathered)


def test_positions_not_updated_carry_input_or_previous_frame():
    feats = make_feats(frames=2)
    keep = random_keep(2, ratio=0.2)
    for carry in ('input', 'previous'):
        sparse, _ = build_pair(carry=carry, update_mask_features=False)
        enc = sparse._encoder_inputs(feats)
        gate = level_gates(keep, HW, enc['sizes'])
        with torch.no_grad():
            memory = sparse._sparse_encode(enc, gate, clip_len=2)
        off = gate[1] < 0.5
        if carry == 'input':
            expect = enc['kwargs']['query'][1, off]
        else:  # frame 0 is dense: its final memory at those positions
            expect = memory[0, off]
        torch.testing.assert_close(memory[1, off], expect)
        assert not torch.allclose(memory[1, ~off],
                                  enc['kwargs']['query'][1, ~off])


@pytest.mark.parametrize('query_select', ['keep_set', 'image'])
def test_gradients_reach_gate_encoder_and_scorer(query_select):
    sparse, _ = build_pair(query_select=query_select)
    sparse.train()
    feats = make_feats(frames=2)
    keep = random_keep(2).requires_grad_(True)
    mask_feature, multi = sparse(KeepSetFeatures(feats, keep, HW, 2))
    (mask_feature.square().mean() + sum(m.mean() for m in multi)).backward()
    layer = sparse.encoder.layers[0]
    assert layer.self_attn.sampling_offsets.weight.grad.abs().sum() > 0
    assert layer.ffn.layers[0][0].weight.grad.abs().sum() > 0
    if query_select == 'keep_set':
        assert keep.grad is not None and keep.grad[1].abs().sum() > 0
    else:
        grads = [p.grad for p in sparse.query_scorer.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_image_select_keeps_as_many_as_the_keep_set():
    sparse, _ = build_pair(query_select='image')
    feats = make_feats(frames=2)
    keep = random_keep(2, ratio=0.25)
    enc = sparse._encoder_inputs(feats)
    gate = sparse._image_gate(keep, HW, enc['sizes'], enc['kwargs']['query'])
    assert gate[0].sum() == 60  # the dense frame stays dense
    assert gate[1].sum() == keep[1].sum() == 15
    assert not torch.equal(gate[1], keep[1])


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_finite_under_cpu_autocast(dtype):
    sparse, _ = build_pair()
    feats = make_feats(frames=2)
    keep = random_keep(2)
    for train in (False, True):
        sparse.train(train)
        with torch.autocast('cpu', dtype=dtype):
            mask_feature, multi = sparse(KeepSetFeatures(feats, keep, HW, 2))
        assert torch.isfinite(mask_feature.float()).all()
        assert all(torch.isfinite(m.float()).all() for m in multi)


def test_bad_settings_and_inputs_fail_with_class_and_key():
    with pytest.raises(ValueError, match=r"KeepSetPixelDecoder: carry must "
                       r"be one of \('input', 'previous'\), got 'last'"):
        KeepSetPixelDecoder(carry='last', **decoder_cfg())
    with pytest.raises(ValueError, match='KeepSetPixelDecoder: query_select'):
        KeepSetPixelDecoder(query_select='sparse_detr', **decoder_cfg())
    with pytest.raises(ValueError, match='KeepSetPixelDecoder: margin must'):
        KeepSetPixelDecoder(margin=-1, **decoder_cfg())
    with pytest.raises(ValueError, match='update_mask_features=True needs'):
        KeepSetPixelDecoder(**decoder_cfg(norm_cfg=dict(type='BN')))
    sparse, _ = build_pair()
    with pytest.raises(TypeError, match="model.backbone.type='VPPBackbone'"):
        sparse(tuple(make_feats()))
    with pytest.raises(ValueError, match='KeepSetFeatures: keep must be'):
        KeepSetFeatures(make_feats(), torch.ones(2, 59), HW, 2)
