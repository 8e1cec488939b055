"""Sparse-kernel layers: equal to the masked dense model, checkpoints, errors."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from mmsparse.art import (DEFAULT_EXCLUDE, global_magnitude_masks,
                          prunable_weights)
from mmsparse.art.state_io import pack_masks
from mmsparse.registry import MODELS
from mmsparse.utils.sparse_checkpoint import save_sparse_checkpoint
from mmsparse.utils.sparse_layers import (CSR_KERNELS, KERNELS, SparseConv2d,
                                          SparseLinear, load_sparse_model,
                                          sparsify_model)

VIT_CLS = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer',
                  arch=dict(embed_dims=32, num_layers=2, num_heads=4,
                            feedforward_channels=64),
                  img_size=32, patch_size=8),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=5,
              in_channels=32))
RESNET_CLS = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', depth=8, widths=(8, 16, 16),
                  stem_channels=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=5, in_channels=16))


def _sparse_weight(shape, sparsity, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g)
    w[torch.rand(shape, generator=g) < sparsity] = 0
    return w


def _build(cfg, sparsity, seed=0):
    """A classifier with random weights and global magnitude masks; its
    masks."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    with torch.no_grad():  # non-trivial BN statistics and biases
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    weights = prunable_weights(model, DEFAULT_EXCLUDE)
    with torch.no_grad():  # one scale: every layer about equally sparse
        for w in weights.values():
            w.normal_(0, 0.2)
    masks = global_magnitude_masks(weights, sparsity)
    with torch.no_grad():
        for name, w in weights.items():
            w.mul_(masks[name])
    return model.eval(), masks


@pytest.mark.parametrize('kernel', KERNELS)
def test_sparse_linear_equals_dense(kernel):
    w = _sparse_weight((24, 40), 0.9)
    b = torch.randn(24)
    dense = nn.Linear(40, 24)
    with torch.no_grad():
        dense.weight.copy_(w)
        dense.bias.copy_(b)
    x = torch.randn(2, 7, 40)
    layer = SparseLinear.from_dense(dense, kernel)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), dense(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(layer(x[0, 0]), dense(x[0, 0]),
                                   atol=1e-5, rtol=0)
    assert layer.nnz == int((w != 0).sum())
    assert torch.equal(layer.weight, w)
    no_bias = SparseLinear(w, None, kernel)
    torch.testing.assert_close(no_bias(x), x @ w.t(), atol=1e-5, rtol=0)


def _column_major(t):
    """A (n, d) tensor stored as the transposed view of a (d, n) one."""
    return t.stride(-2) == 1 and t.stride(-1) == t.shape[-2]


def test_keep_layout_kernel_keeps_the_input_layout():
    """'csr_keep_layout': rows in -> rows out (also with a contiguous
    output requested); the transposed view a 'csr' layer returns -> the
    same kind of view out; 'csr' returns the transposed view either way."""
    w1, w2 = _sparse_weight((48, 40), 0.9), _sparse_weight((24, 48), 0.9, 1)
    b1, b2 = torch.randn(48), torch.randn(24)
    x = torch.randn(2, 7, 40)
    ref = F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)
    for first, second in [('csr', 'csr'), ('csr_keep_layout',) * 2,
                          ('csr', 'csr_keep_layout'),
                          ('csr_keep_layout', 'csr')]:
        fc1 = SparseLinear(w1, b1, first)
        fc2 = SparseLinear(w2, b2, second)
        with torch.no_grad():
            h = fc1(x)
            assert h.is_contiguous() == (first == 'csr_keep_layout')
            assert _column_major(h.reshape(14, 48)) == (first == 'csr')
            out = fc2(F.gelu(h))
        # keep_layout after 'csr' (a transposed view in) and 'csr' give a
        # transposed view; keep_layout after keep_layout gives rows
        assert out.is_contiguous() == (first == second == 'csr_keep_layout')
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    qkv = SparseLinear(w1, b1, 'csr_keep_layout', contiguous_output=True)
    with torch.no_grad():
        for inp in (x, x.reshape(14, 40).t().contiguous().t().reshape(
                2, 7, 40)):
            out = qkv(inp)
            assert out.is_contiguous()
            torch.testing.assert_close(out, F.linear(x, w1, b1), atol=1e-5,
                                       rtol=0)


@pytest.mark.parametrize('kernel', CSR_KERNELS)
@pytest.mark.parametrize('contiguous_output', [False, True])
def test_which_inputs_take_the_rows_product(kernel, contiguous_output):
    """The product in rows (mm_rows) runs for inputs in rows with
    'csr_keep_layout', and with 'csr_contiguous_rows' only for a layer that
    returns contiguous rows; never with 'csr' or for a transposed view."""
    w, b = _sparse_weight((24, 40), 0.9), torch.randn(24)
    layer = SparseLinear(w, b, kernel, contiguous_output)
    calls = []
    mm_rows = layer._matrix.mm_rows
    layer._matrix.mm_rows = lambda x: calls.append(1) or mm_rows(x)
    x = torch.randn(2, 7, 40)
    # the transposed view a 'csr' layer returns
    view = x.reshape(14, 40).t().contiguous().t().reshape(2, 7, 40)
    expect = kernel == 'csr_keep_layout' or (
        kernel == 'csr_contiguous_rows' and contiguous_output)
    with torch.no_grad():
        for inp, rows in ((x, True), (view, False)):
            calls.clear()
            out = layer(inp)
            assert len(calls) == (1 if rows and expect else 0)
            assert out.is_contiguous() == (
                contiguous_output or (rows and expect))
            torch.testing.assert_close(out, F.linear(x, w, b), atol=1e-5,
                                       rtol=0)


@pytest.mark.parametrize('shape', [(1, 40), (24, 1), (1, 1)])
@pytest.mark.parametrize('sparsity', [0.5, 1.0])
def test_csr_kernels_at_edge_shapes(shape, sparsity):
    """One output, one input feature, one token, an all-zero weight."""
    w = _sparse_weight(shape, sparsity, 2)
    b = torch.randn(shape[0])
    for kernel in CSR_KERNELS:
        layer = SparseLinear(w, b, kernel)
        for n in (1, 5):
            x = torch.randn(n, shape[1])
            with torch.no_grad():
                torch.testing.assert_close(layer(x), F.linear(x, w, b),
                                           atol=1e-5, rtol=0)


@pytest.mark.parametrize('conv_args', [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=1, bias=False),
    dict(kernel_size=(3, 1), dilation=2, padding=(2, 0)),
    dict(kernel_size=1),
    dict(kernel_size=1, stride=2),
])
@pytest.mark.parametrize('batch', [1, 3])
def test_sparse_conv_equals_dense(conv_args, batch):
    conv = nn.Conv2d(6, 10, **conv_args)
    with torch.no_grad():
        conv.weight.copy_(_sparse_weight(conv.weight.shape, 0.8))
    x = torch.randn(batch, 6, 9, 11)
    layer = SparseConv2d(conv)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), conv(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize('kernel', CSR_KERNELS)
@pytest.mark.parametrize('cfg', [VIT_CLS, RESNET_CLS], ids=['vit', 'resnet'])
def test_sparsified_model_equals_masked_dense(cfg, kernel):
    dense, _ = _build(cfg, 0.9)
    sparse = copy.deepcopy(dense)
    swapped = sparsify_model(sparse, min_sparsity=0.5, kernel=kernel,
                             layers=('linear', 'conv'))
    kinds = {s['kind'] for s in swapped}
    assert kinds == ({'linear'} if cfg is VIT_CLS else {'linear', 'conv'})
    assert all(s['sparsity'] >= 0.5 for s in swapped)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = dense(x, mode='tensor')
        out = sparse(x, mode='tensor')
    assert (out - ref).abs().max() <= 1e-5
    # the state dict is the dense model's (dense 'weight' keys)
    ref_sd, sd = dense.state_dict(), sparse.state_dict()
    assert list(sd) == list(ref_sd)
    for k in ref_sd:
        assert torch.equal(sd[k], ref_sd[k]), k


def test_min_sparsity_and_exclude_keep_layers_dense():
    dense, _ = _build(VIT_CLS, 0.9)
    sparse = copy.deepcopy(dense)
    sparsity = {n: float((m.weight == 0).float().mean())
                for n, m in dense.named_modules() if isinstance(m, nn.Linear)}
    threshold = sorted(sparsity.values())[len(sparsity) // 2]
    swapped = sparsify_model(copy.deepcopy(dense), min_sparsity=threshold)
    assert {s['name'] for s in swapped} == {
        n for n, v in sparsity.items() if v >= threshold}
    assert 0 < len(swapped) < len(sparsity)
    swapped = sparsify_model(sparse, min_sparsity=0.0,
                             exclude=[r'^head\.'])
    assert swapped and not any(s['name'].startswith('head') for s in swapped)
    assert isinstance(sparse.head.layers.head, nn.Linear)


def test_multihead_attention_out_proj_is_not_swapped():
    model = nn.Sequential(nn.MultiheadAttention(8, 2), nn.Linear(8, 4))
    with torch.no_grad():
        model[0].out_proj.weight.zero_()
        model[1].weight.zero_()
    swapped = sparsify_model(model, min_sparsity=0.5)
    assert [s['name'] for s in swapped] == ['1']
    assert type(model[0].out_proj) is not SparseLinear


def test_bad_arguments_name_the_allowed_values():
    with pytest.raises(ValueError, match=r"kernel must be one of .*'csr'"):
        sparsify_model(nn.Linear(2, 2), kernel='bsr')
    with pytest.raises(ValueError, match=r'min_sparsity must be in \[0, 1\]'):
        sparsify_model(nn.Linear(2, 2), min_sparsity=1.5)
    with pytest.raises(ValueError, match='groups=2'):
        SparseConv2d(nn.Conv2d(4, 4, 3, groups=2))


@pytest.mark.parametrize('cfg', [VIT_CLS, RESNET_CLS], ids=['vit', 'resnet'])
def test_sparse_checkpoint_round_trip(cfg, tmp_path):
    dense, masks = _build(cfg, 0.9)
    path = str(tmp_path / 'sparse.pth')
    save_sparse_checkpoint(dict(meta=dict(epoch=3),
                                state_dict=dense.state_dict()), path)
    fresh, _ = _build(cfg, 0.0, seed=1)
    swapped = load_sparse_model(fresh, path, min_sparsity=0.5,
                                layers=('linear', 'conv'))
    assert swapped and isinstance(
        dict(fresh.named_modules())[swapped[0]['name']],
        (SparseLinear, SparseConv2d))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (fresh(x, mode='tensor') -
                dense(x, mode='tensor')).abs().max() <= 1e-5
    # the sparsified model saves a state dict that loads into the dense one
    again, _ = _build(cfg, 0.0, seed=2)
    again.load_state_dict(fresh.state_dict(), strict=True)
    for k, v in dense.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    # training checkpoint with the ART masks: checked, then loaded
    plain = dict(state_dict=dense.state_dict(),
                 art_state=dict(masks=pack_masks(masks)))
    other, _ = _build(cfg, 0.0, seed=3)
    assert load_sparse_model(other, plain, sparse_kernels=False) == []


def test_mismatched_checkpoint_refuses_to_load_naming_the_parameter():
    dense, masks = _build(VIT_CLS, 0.9)
    sd = dense.state_dict()
    name = next(iter(masks))
    fresh, _ = _build(VIT_CLS, 0.0, seed=1)
    # a mask that prunes where the weight is not zero
    wrong = {k: v.clone() for k, v in masks.items()}
    wrong[name] = ~wrong[name]
    with pytest.raises(ValueError) as err:
        load_sparse_model(fresh, dict(state_dict=sd,
                                      art_state=dict(masks=wrong)))
    assert name in str(err.value) and 'mask' in str(err.value)
    assert '\n' not in str(err.value)
    # a mask of another shape
    wrong = dict(masks)
    wrong[name] = masks[name][:, :-1]
    with pytest.raises(ValueError, match=f"mask '{name}' has shape"):
        load_sparse_model(fresh, dict(state_dict=sd,
                                      art_state=dict(masks=wrong)))
    # a mask for a parameter the model lacks
    with pytest.raises(ValueError, match="mask 'nope.weight' names no"):
        load_sparse_model(fresh, dict(state_dict=sd, art_state=dict(
            masks={'nope.weight': masks[name]})))
    # weights of another architecture
    bigger = copy.deepcopy(VIT_CLS)
    bigger['head']['num_classes'] = 7
    other, _ = _build(bigger, 0.9)
    with pytest.raises(ValueError) as err:
        load_sparse_model(fresh, other.state_dict())
    assert "'head.layers.head.weight' has shape (7, 32)" in str(err.value)
    assert '\n' not in str(err.value)
    # nothing was swapped by the refused loads
    assert not any(isinstance(m, SparseLinear) for m in fresh.modules())


def test_sparse_inference_hook_swaps_before_test():
    from types import SimpleNamespace

    from mmengine.logging import MMLogger

    from mmsparse.engine.hooks import SparseInferenceHook
    dense, _ = _build(RESNET_CLS, 0.9)
    model = copy.deepcopy(dense)
    runner = SimpleNamespace(model=model,
                             logger=MMLogger.get_instance('sparse_hook_test'))
    SparseInferenceHook(min_sparsity=0.5, layers=('conv', )).before_test(
        runner)
    assert any(isinstance(m, SparseConv2d) for m in model.modules())
    assert not any(isinstance(m, SparseLinear) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (model(x, mode='tensor') -
                dense(x, mode='tensor')).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="SparseInferenceHook: kernel must"):
        SparseInferenceHook(kernel='dense')
