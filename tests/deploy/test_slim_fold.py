"""mmsparse.deploy.fold_slim_indices: the folded slim model equals the slim
model (PyTorch; onnxruntime with the deploy extra) without the gathers of
its kept dimensions; neither graph scatters."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope

from mmsparse.deploy import FOLD_SIDES, fold_slim_indices
from mmsparse.p3b.slim import SlimAttention, SlimMlp
from mmsparse.registry import MODELS

D = 32
#: full sub-blocks with partial widths, a constant attention and a skipped
#: MLP, a constant MLP
SLIM_ARCH = [
    dict(attn_in=17, attn_head=5, attn_out=22, mlp_in=20, mlp_hidden=40,
         mlp_out=25),
    dict(attn_in=0, attn_head=8, attn_out=12, mlp_in=9, mlp_hidden=16,
         mlp_out=0),
    dict(attn_in=30, attn_head=3, attn_out=32, mlp_in=11, mlp_hidden=0,
         mlp_out=7),
]
SLIM_CLS = dict(
    type='ImageClassifier',
    backbone=dict(type='SlimVisionTransformer', slim_arch=SLIM_ARCH,
                  arch=dict(embed_dims=D, num_layers=3, num_heads=4,
                            feedforward_channels=64),
                  img_size=32, patch_size=8),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=5,
              in_channels=D))
SIDES = [('out', ), ('in', ), ('in', 'out')]


@torch.no_grad()
def _random_slim(seed=0):
    """The slim classifier with random weights and random kept indices."""
    gen = torch.Generator().manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(SLIM_CLS)).eval()
    for p in model.parameters():
        p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    for name, buf in model.named_buffers():
        if name.endswith('index'):
            buf.copy_(torch.randperm(D, generator=gen)[:buf.numel()].sort()
                      .values)
    return model


def _sub_blocks(model):
    return [m for m in model.modules()
            if isinstance(m, (SlimAttention, SlimMlp))]


@pytest.mark.parametrize('sides', SIDES, ids='+'.join)
def test_folded_model_equals_the_slim_model(sides):
    slim = _random_slim()
    before = {k: v.clone() for k, v in slim.state_dict().items()}
    folded = fold_slim_indices(slim, sides)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref, out = slim(x, mode='tensor'), folded(x, mode='tensor')
    assert ref.abs().max() > 1e-2  # non-trivial logits
    assert (out - ref).abs().max() <= 1e-5
    # the slim model is not changed
    assert all(torch.equal(before[k], v)
               for k, v in slim.state_dict().items())
    modes = [m.mode for m in _sub_blocks(folded)]
    assert modes == ['full', 'full', 'const', 'skip', 'full', 'const']
    for old, new in zip(_sub_blocks(slim), _sub_blocks(folded)):
        attn = isinstance(new, SlimAttention)
        if 'out' in sides and new.mode != 'skip':
            assert new.out_index.tolist() == list(range(D))
            if new.mode == 'full':
                assert getattr(new, 'proj' if attn else 'fc2').out_features \
                    == D
            else:
                assert new.const.numel() == D
        else:
            assert torch.equal(new.out_index, old.out_index)
        if new.mode == 'full':
            first = getattr(new, 'qkv' if attn else 'fc1')
            if 'in' in sides:
                assert new.norm.weight.numel() == first.in_features == D
            else:
                assert torch.equal(new.norm.index, old.norm.index)
                assert first.in_features == old.norm.index.numel()


def test_fold_refuses_an_unknown_side():
    with pytest.raises(ValueError, match=r"fold_slim_indices: sides must be "
                       r"among \('in', 'out'\), got 'mid'"):
        fold_slim_indices(_random_slim(), ('in', 'mid'))
    assert FOLD_SIDES == ('in', 'out')


def _last_axis_gathers(path):
    """Exported ``Gather`` nodes along the width of the (B, N, D) tokens
    (a norm's kept inputs, an update onto its kept outputs) and ``Pad``
    nodes (the zero column of a norm's affine, of an update)."""
    import onnx
    nodes = onnx.load(path, load_external_data=False).graph.node
    gathers = sum(n.op_type == 'Gather' and any(
        a.name == 'axis' and a.i in (2, -1) for a in n.attribute)
        for n in nodes)
    return gathers, sum(n.op_type == 'Pad' for n in nodes)


@pytest.mark.parametrize('sides', SIDES, ids='+'.join)
def test_folded_export_equals_the_slim_model_in_onnxruntime(sides, tmp_path):
    pytest.importorskip('onnx', reason='the deploy extra is not installed')
    pytest.importorskip('onnxruntime', reason='the deploy extra is not '
                        'installed')
    from mmsparse.deploy import export_model
    from mmsparse.utils.ort_profile import exported_op_counts
    slim = _random_slim()
    counts, width = {}, {}
    for key, fold in (('slim', ()), ('folded', sides)):
        out = str(tmp_path / f'{key}.onnx')
        # the check runs the folded graph against the unfolded model
        res = export_model(slim, out, (32, 32), fold_slim=fold)
        assert res['max_abs_diff'] <= 1e-4
        counts[key] = exported_op_counts(out)
        width[key] = _last_axis_gathers(out)
    # neither graph scatters or gathers elements
    for ops in counts.values():
        assert 'GatherElements' not in ops and 'ScatterElements' not in ops
    # the 3 full sub-blocks with partial norms gather their kept inputs
    # (a Pad each for the weight and bias of their full-width affine); the
    # 2 full sub-blocks with partial outputs gather their zero-padded
    # update to the width D, the 2 constant ones a zero-padded constant
    # (a 1-D gather); block 2's attention keeps all its outputs, block 1's
    # MLP is skipped
    assert width['slim'] == (3 + 2, 2 * 3 + 2 + 2)
    gathers = (0 if 'in' in sides else 3) + (0 if 'out' in sides else 2)
    pads = (0 if 'in' in sides else 6) + (0 if 'out' in sides else 4)
    assert width['folded'] == (gathers, pads)


def test_tool_folds_a_p3b_export(tmp_path, capsys):
    pytest.importorskip('onnx', reason='the deploy extra is not installed')
    pytest.importorskip('onnxruntime', reason='the deploy extra is not '
                        'installed')
    from script_loader import load_script
    from test_onnx_export import _slim_classifier

    from mmsparse.models.backbones.p3b_export import write_p3b_export
    from mmsparse.utils.ort_profile import exported_op_counts
    _, slim, slim_cfg = _slim_classifier()
    folder = str(tmp_path / 'p3b')
    write_p3b_export(folder, slim_cfg, slim.state_dict(),
                     slim_cfg['backbone']['slim_arch'])
    tool = load_script('tools/deployment/pytorch2onnx.py')
    out = str(tmp_path / 'folded.onnx')
    assert tool.main([folder, '--out', out, '--fold-slim', 'out', 'in']) == 0
    text = capsys.readouterr().out
    assert 'slim indices folded: out in' in text
    assert 'within tolerance 0.0001' in text
    ops = exported_op_counts(out)
    assert 'GatherElements' not in ops and 'ScatterElements' not in ops
    with pytest.raises(SystemExit):
        tool.parse_args([folder, '--out', out, '--fold-slim', 'mid'])


def test_cold_slim_export_has_no_scatter(tmp_path):
    """Traced before any PyTorch forward (the blocks' inverse indices are
    computed while tracing), the slim graph still gathers only (no
    ``ScatterElements`` / ``ScatterND`` / ``GatherElements``) and equals
    PyTorch in onnxruntime."""
    pytest.importorskip('onnx', reason='the deploy extra is not installed')
    pytest.importorskip('onnxruntime', reason='the deploy extra is not '
                        'installed')
    import warnings

    from mmsparse.deploy import ClassifierLogits, onnx_max_abs_diff
    from mmsparse.utils.ort_profile import exported_op_counts
    module = ClassifierLogits(_random_slim()).eval()
    x = torch.randn(2, 3, 32, 32)
    out = str(tmp_path / 'cold.onnx')
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # tracer warnings
        torch.onnx.export(module, (x, ), out, input_names=['image'],
                          opset_version=17, do_constant_folding=False,
                          dynamo=False)
    ops = exported_op_counts(out)
    assert not {'GatherElements', 'ScatterElements', 'ScatterND'} & set(ops)
    assert _last_axis_gathers(out) == (3 + 2, 2 * 3 + 2 + 2)
    diff, _ = onnx_max_abs_diff(out, module, (x, ), ['image'])
    assert diff <= 1e-4
