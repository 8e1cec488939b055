"""SlimBlock equals a plain reference computation, forward and backward.

The reference keeps the first implementation of the slim blocks (full-width
layer_norm, ``index_select`` on the kept input dims, affine on them; the
branch output added to a zero-padded full-width update); the module may use
faster kernels but must compute the same, in fp32 and under CPU autocast,
for every mode ('full', 'const', 'skip') and for kept widths that are not
multiples of 8.
"""
from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F

from mmsparse.p3b.slim import (DropPath, SlimBlock, SlimNorm, inverse_index,
                               take_last)

D, HEADS = 32, 2
CASES = {
    # kept widths not multiples of 8
    'odd': dict(attn_in=21, attn_head=5, attn_out=19, mlp_in=13,
                mlp_hidden=37, mlp_out=11),
    # full-width norms and residual updates, reduced inner widths
    'full_width': dict(attn_in=D, attn_head=7, attn_out=D, mlp_in=D,
                       mlp_hidden=29, mlp_out=D),
    # attention without inner dims (constant), MLP without outputs (skip)
    'const_skip': dict(attn_in=23, attn_head=0, attn_out=17, mlp_in=9,
                       mlp_hidden=45, mlp_out=0),
    # attention skipped, MLP without input (constant)
    'skip_const': dict(attn_in=11, attn_head=6, attn_out=0, mlp_in=0,
                       mlp_hidden=30, mlp_out=25),
}


def _block(dims, seed=0):
    """A SlimBlock with random kept indices and non-trivial parameters."""
    gen = torch.Generator().manual_seed(seed)
    block = SlimBlock(D, HEADS, dims, (D // HEADS)**-0.5)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + 0.1)
        for name, buf in block.named_buffers():
            keep = buf.numel()
            buf.copy_(torch.randperm(D, generator=gen)[:keep].sort().values)
    return block


def _ref_norm(norm, x):
    if norm.weight.numel() == norm.dims:
        return F.layer_norm(x, (norm.dims, ), norm.weight, norm.bias,
                            norm.eps)
    x = F.layer_norm(x, (norm.dims, ), None, None, norm.eps)
    return x.index_select(-1, norm.index) * norm.weight + norm.bias


def _ref_update(branch, x, y):
    """``x`` plus ``y`` zero-padded to the full width (residual dtype)."""
    full = x.new_zeros(x.shape)
    full[..., branch.out_index] = y.to(x.dtype)
    return x + full


def _ref_attn(attn, x, mask):
    if attn.mode == 'skip':
        return x
    if attn.mode == 'const':
        return _ref_update(attn, x, attn.const.to(x.dtype).expand(
            *x.shape[:-1], -1))
    B, N = x.shape[:2]
    qkv = attn.qkv(_ref_norm(attn.norm, x)).reshape(B, N, 3, attn.num_heads,
                                                    attn.head_dims)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask[:, None, None, :], scale=attn.qk_scale)
    y = attn.proj(out.transpose(1, 2).reshape(B, N, -1))
    return _ref_update(attn, x, y)


def _ref_mlp(mlp, x):
    if mlp.mode == 'skip':
        return x
    if mlp.mode == 'const':
        return _ref_update(mlp, x, mlp.const.to(x.dtype).expand(
            *x.shape[:-1], -1))
    return _ref_update(mlp, x,
                       mlp.fc2(mlp.act(mlp.fc1(_ref_norm(mlp.norm, x)))))


def _ref_block(block, x, mask):
    return _ref_mlp(block.mlp, _ref_attn(block.attn, x, mask))


def _inputs(seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 13, D, generator=gen) * 2 + 0.5
    mask = torch.ones(2, 13, dtype=torch.bool)
    mask[1, -4:] = False  # padded keys of the second sample
    return x, mask


def _forward_backward(fn, block, x, mask):
    x = x.clone().requires_grad_()
    out = fn(x, mask)
    gen = torch.Generator().manual_seed(2)
    (out * torch.randn(out.shape, generator=gen)).sum().backward()
    grads = {n: p.grad.clone() for n, p in block.named_parameters()}
    block.zero_grad(set_to_none=True)
    return out.detach(), x.grad, grads


@pytest.mark.parametrize('case', sorted(CASES))
@pytest.mark.parametrize('dtype', [None, torch.bfloat16])
def test_slim_block_equals_reference(case, dtype):
    """Forward and all gradients equal the reference's; under autocast the
    output and the gradients stay fp32 and the residual passes unchanged
    on the dims no branch writes."""
    block = _block(CASES[case]).train()
    x, mask = _inputs()

    def run(fn):
        with torch.autocast('cpu', dtype=dtype or torch.bfloat16,
                            enabled=dtype is not None):
            return _forward_backward(fn, block, x, mask)

    out, gx, grads = run(block)
    ref, ref_gx, ref_grads = run(lambda x, m: _ref_block(block, x, m))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype is None else \
        dict(rtol=2e-2, atol=2e-2)
    assert out.dtype == gx.dtype == torch.float32
    torch.testing.assert_close(out, ref, **tol)
    torch.testing.assert_close(gx, ref_gx, **tol)
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        assert g.dtype == torch.float32, name
        scale = ref_grads[name].abs().max().clamp(min=1)
        torch.testing.assert_close(g / scale, ref_grads[name] / scale,
                                   **tol, msg=name)
    written = torch.zeros(D, dtype=torch.bool)
    for branch in (block.attn, block.mlp):
        written[branch.out_index] |= branch.mode != 'skip'
    assert torch.equal(out[..., ~written], x[..., ~written])


@pytest.mark.parametrize('keep', [D, 27, 1])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_slim_norm_equals_reference(keep, dtype):
    """Tight check of the norm alone, also for a bf16 input (the old code
    returned fp32 there: bf16 normed values times the fp32 affine)."""
    gen = torch.Generator().manual_seed(0)
    norm = SlimNorm(D, keep)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(keep, generator=gen))
        norm.bias.copy_(torch.randn(keep, generator=gen))
        norm.index.copy_(torch.randperm(D, generator=gen)[:keep].sort()[0])
    x = (torch.randn(3, 5, D, generator=gen) * 3 + 1).to(dtype)
    out, ref = norm(x), _ref_norm(norm, x)
    assert out.dtype == ref.dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else \
        dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(out, ref, **tol)


def test_slim_block_state_dict_is_unchanged():
    """Exports and checkpoints keep loading: same keys and shapes."""
    block = _block(CASES['odd'])
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes == {
        'attn.out_index': (19, ), 'attn.norm.weight': (21, ),
        'attn.norm.bias': (21, ), 'attn.norm.index': (21, ),
        'attn.qkv.weight': (30, 21), 'attn.qkv.bias': (30, ),
        'attn.proj.weight': (19, 10), 'attn.proj.bias': (19, ),
        'mlp.out_index': (11, ), 'mlp.norm.weight': (13, ),
        'mlp.norm.bias': (13, ), 'mlp.norm.index': (13, ),
        'mlp.fc1.weight': (37, 13), 'mlp.fc1.bias': (37, ),
        'mlp.fc2.weight': (11, 37), 'mlp.fc2.bias': (11, )}
    fresh = SlimBlock(D, HEADS, CASES['odd'], (D // HEADS)**-0.5)
    fresh.load_state_dict(block.state_dict(), strict=True)
    x, mask = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, mask), block(x, mask))


def test_inverse_index_scatters_by_a_gather():
    """``take_last(pad(y), inverse_index(idx, D))`` puts ``y`` at ``idx``
    and zeros elsewhere; traced (a constant of the graph) and eager give
    the same inverse."""
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(D, generator=gen)[:11].sort().values
    inv = inverse_index(idx, D)
    assert inv.dtype == torch.long and inv.shape == (D, )
    assert torch.equal(inv[idx], torch.arange(11))
    assert (inv == 11).sum() == D - 11
    y = torch.randn(2, 3, 11, generator=gen)
    full = torch.zeros(2, 3, D)
    full[..., idx] = y
    assert torch.equal(take_last(F.pad(y, (0, 1)), inv), full)
    traced = torch.jit.trace(lambda t: t + inverse_index(idx, D),
                             torch.zeros(D, dtype=torch.long))
    assert torch.equal(traced(torch.zeros(D, dtype=torch.long)), inv)


def test_slim_block_follows_its_indices():
    """The cached inverse indices follow every way the kept indices change
    after a forward: ``load_state_dict``, written in place (as
    ``slice_block`` does), a replaced buffer, a deep copy."""
    x, mask = _inputs()
    block, other = _block(CASES['odd'], seed=0), _block(CASES['odd'],
                                                        seed=3)
    state = {k: v.clone() for k, v in block.state_dict().items()}
    params = {k: v for k, v in other.state_dict().items()
              if not k.endswith('index')}
    with torch.no_grad():
        ref_block, ref_other = block(x, mask), other(x, mask)
        assert not torch.allclose(ref_block, ref_other)
        block.load_state_dict(other.state_dict())
        torch.testing.assert_close(block(x, mask), ref_other, rtol=0,
                                   atol=0)
        block.load_state_dict(state)
        torch.testing.assert_close(block(x, mask), ref_block, rtol=0,
                                   atol=0)
        # the other block's parameters, then its indices written in place
        block.load_state_dict(params, strict=False)
        block(x, mask)
        for name, buf in other.named_buffers():
            block.get_buffer(name).copy_(buf)
        torch.testing.assert_close(block(x, mask), ref_other, rtol=0,
                                   atol=0)
        # replaced buffers (as fold_slim_indices does; fresh buffers and
        # their replacements are both at version 0), then a deep copy
        fresh = SlimBlock(D, HEADS, CASES['odd'], (D // HEADS)**-0.5)
        fresh.load_state_dict(params, strict=False)
        fresh(x, mask)
        for name, buf in other.named_buffers():
            module, attr = name.rsplit('.', 1)
            setattr(fresh.get_submodule(module), attr, buf.clone())
        torch.testing.assert_close(fresh(x, mask), ref_other, rtol=0,
                                   atol=0)
        torch.testing.assert_close(deepcopy(fresh)(x, mask), ref_other,
                                   rtol=0, atol=0)


@pytest.mark.parametrize('case,branch', [('odd', 'attn'), ('odd', 'mlp'),
                                         ('const_skip', 'attn'),
                                         ('skip_const', 'mlp')])
def test_drop_path_drops_whole_updates(case, branch):
    """Under stochastic depth each sample gets the whole update scaled by
    1 / keep or none of it, for a full and for a constant branch."""
    block = _block(CASES[case])
    for m in block.modules():
        if isinstance(m, DropPath):
            m.drop_prob = 0.5
    sub = getattr(block, branch)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(16, 5, D, generator=gen)
    with torch.no_grad():
        update = sub.eval()(x) - x
        torch.manual_seed(0)
        dropped = sub.train()(x) - x
    kept = [torch.allclose(d, u / 0.5, rtol=1e-5, atol=1e-5)
            for d, u in zip(dropped, update)]
    zero = [bool((d == 0).all()) for d in dropped]
    assert all(k != z for k, z in zip(kept, zero))
    assert 0 < sum(kept) < len(kept)
