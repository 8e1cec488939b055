"""P3B correctness under mixed precision, without host syncs, on resume
and with missing features (plain torch, tiny ViT)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmsparse.p3b import P3BPruner, non_block_params
from mmsparse.p3b.slim import SlimBlock
from .toy_vit import ToyViT, train_steps


def _pruner(model, **kwargs):
    args = dict(num_classes=5, keep_ratio=0.5, start=0, sparse=6, final=10,
                interval=2, non_block_params=non_block_params(model))
    args.update(kwargs)
    return P3BPruner(model, **args)


def _batches(n, seed=1, batch=8):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, 16, 16, generator=gen),
             torch.randint(0, 5, (batch, ), generator=gen))
            for _ in range(n)]


def _run(pruner, model, batches, scale=1.0, dtype=None, poison=None,
         grad_scale=None):
    """Forward/backward (no optimizer step: runs stay comparable) under
    autocast; ``poison(step, pruner)`` may corrupt gradients or features
    before the statistics are taken."""
    for step, (x, y) in enumerate(batches):
        pruner.before_iter(step)
        with torch.autocast('cpu', dtype=dtype or torch.bfloat16,
                            enabled=dtype is not None):
            loss = F.cross_entropy(model(x), y)
        (loss * scale).backward()
        if poison is not None:
            poison(step, pruner)
        if grad_scale is None:
            pruner.after_iter(step, y)
        else:
            pruner.after_iter(step, y, grad_scale)
        model.zero_grad()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_taylor_scores_are_divided_by_the_loss_scale(dtype):
    """AMP scales the loss by S; the gates are not in the runner's
    optimizer, so nobody unscales their gradients but the pruner."""
    torch.manual_seed(0)
    model = ToyViT()
    model_s = copy.deepcopy(model)
    kw = dict(start=0, sparse=20, final=40, interval=20)
    ref, scaled = _pruner(model, **kw), _pruner(model_s, **kw)
    batches = _batches(3)
    _run(ref, model, batches, dtype=dtype)
    scale = 2.0**12  # a power of two: scaling is exact
    _run(scaled, model_s, batches, scale=scale, dtype=dtype,
         grad_scale=torch.tensor(scale))
    assert float(scaled.taylor_count) == 3
    for k, v in ref.taylor.items():
        assert torch.isfinite(scaled.taylor[k]).all()
        assert v.abs().sum() > 0
        # fp16 gradients of the unscaled run lose digits to underflow;
        # without unscaling the scores are S**2 = 1.7e7 times too large
        torch.testing.assert_close(scaled.taylor[k], v, rtol=1e-2, atol=0)


def test_non_finite_steps_are_skipped():
    """An fp16 overflow step (skipped by the optimizer) or non-finite probe
    losses must not turn the statistics into NaN (NaN sorts as most
    important)."""
    torch.manual_seed(0)
    model = ToyViT()
    model_b = copy.deepcopy(model)
    kw = dict(start=0, sparse=20, final=40, interval=20)
    clean, poisoned = _pruner(model, **kw), _pruner(model_b, **kw)
    batches = _batches(4)

    def poison(step, pruner):
        if step == 1:  # overflow in the backward pass
            pruner.gated.gate(0, 'mlp_hidden').grad[3] = float('inf')
        if step == 2:  # an inf in the residual stream
            pruner.gated.features[2][0, 0, 0] = float('nan')

    _run(poisoned, model_b, batches, poison=poison)
    assert float(poisoned.taylor_count) == 3
    assert float(poisoned.benefit_count) == 3
    for v in poisoned.taylor.values():
        assert torch.isfinite(v).all()
    assert torch.isfinite(poisoned.benefit_sum).all()
    assert all(torch.isfinite(p).all() for p in poisoned.probes.parameters())
    # gates are constant here (no update yet): the Taylor sums are those of
    # the three finite steps, the overflow step added nothing
    _run(clean, model, [batches[0], batches[2], batches[3]])
    for k, v in clean.taylor.items():
        torch.testing.assert_close(poisoned.taylor[k], v)


def test_statistics_accumulate_without_host_syncs(monkeypatch):
    """Per-iteration work stays on the device: no .cpu() / .item() /
    float() / bool() of tensors between the mask updates."""
    torch.manual_seed(0)
    model = ToyViT()
    pruner = _pruner(model, start=0, sparse=20, final=40, interval=20)
    pruner.probe_optim.step = lambda: None  # torch's AdamW reads its step
    (x, y), = _batches(1)
    pruner.before_iter(0)
    F.cross_entropy(model(x), y).backward()
    calls = []
    for name in ('cpu', 'item', 'tolist', '__bool__', '__float__',
                 '__int__'):
        orig = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _orig=orig, **kwargs):
            calls.append(_name)
            return _orig(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, spy)
    pruner.after_iter(0, y)
    monkeypatch.undo()
    assert calls == []
    assert float(pruner.taylor_count) == 1
    assert float(pruner.benefit_count) == 1


def test_missing_features_are_reported_with_their_count():
    torch.manual_seed(0)
    model = ToyViT()
    messages = []
    pruner = _pruner(model, start=0, sparse=4, final=8, interval=4,
                     warn=messages.append)
    for step, (x, y) in enumerate(_batches(4)):
        pruner.before_iter(step)
        F.cross_entropy(model(x), y).backward()
        if step < 3:
            pruner.gated.features[1] = None
        pruner.after_iter(step, y)
    assert len(pruner.history) == 1
    assert any('3 probe step(s)' in m for m in messages), messages
    assert float(pruner.history[0]['benefit_cls'][0]) != 0


def test_restored_state_activates_the_gates_at_once():
    """Resuming a finished run: the model is pruned before any iteration
    (runner.test() right after the resume evaluates the pruned model)."""
    torch.manual_seed(0)
    model = ToyViT()
    pruner = _pruner(model, start=0, sparse=4, final=6, interval=2)
    train_steps(model, pruner, 6)
    assert pruner.finalized
    state = copy.deepcopy(pruner.get_state())
    model2 = ToyViT()
    model2.load_state_dict(model.state_dict())
    model2_pruner = _pruner(model2, start=0, sparse=4, final=6, interval=2)
    model2_pruner.set_state(state)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = model2.eval()(x)
        model2_pruner.gated.active = True
        ref = model2(x)
    assert torch.equal(out, ref)


def test_resume_with_another_keep_ratio_or_schedule_fails():
    torch.manual_seed(0)
    model = ToyViT()
    pruner = _pruner(model, start=0, sparse=4, final=6, interval=2)
    train_steps(model, pruner, 3)
    state = pruner.get_state()
    with pytest.raises(ValueError, match='^P3BPruner: cannot resume.*'
                       'keep_ratio=0.5.*keep_ratio=0.25'):
        _pruner(ToyViT(), keep_ratio=0.25, start=0, sparse=4, final=6,
                interval=2).set_state(state)
    with pytest.raises(ValueError, match='^P3BPruner: cannot resume.*'
                       'schedule'):
        _pruner(ToyViT(), start=0, sparse=4, final=8,
                interval=2).set_state(state)
    with pytest.raises(ValueError, match='^P3BPruner: cannot resume.*probe'):
        _pruner(ToyViT(), start=0, sparse=4, final=6, interval=2,
                probe='cheap').set_state(state)


def test_construction_errors_start_with_the_class_name():
    model = ToyViT()
    for kwargs in (dict(keep_ratio=1.5), dict(start=12), dict(interval=0),
                   dict(block_budget='x'), dict(probe='tiny'),
                   dict(probe_fraction=0), dict(probe_window=5),
                   dict(keep_ratio=0.01), dict(alpha=2.0)):
        with pytest.raises(ValueError, match='^P3BPruner: '):
            _pruner(model, **kwargs)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_slim_block_runs_under_autocast(dtype):
    """The residual (fp32) and the branch output (fp16 / bf16) meet in
    the residual add when a sub-block keeps only some output dims."""
    torch.manual_seed(0)
    dims = dict(attn_in=24, attn_head=8, attn_out=20, mlp_in=16,
                mlp_hidden=40, mlp_out=12)
    block = SlimBlock(32, 2, dims, 16**-0.5).eval()
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        ref = block(x)
        with torch.autocast('cpu', dtype=dtype):
            out = block(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)
