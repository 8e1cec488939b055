"""ONNX export -> onnxruntime equals PyTorch (tiny models), and bad input."""
import copy
import importlib.util
import os.path as osp

import pytest
import torch

pytest.importorskip('onnx', reason='the deploy extra (pip install -e '
                    '.[deploy]) is not installed')
pytest.importorskip('onnxruntime', reason='the deploy extra (pip install -e '
                    '.[deploy]) is not installed')

from mmengine.registry import DefaultScope  # noqa: E402

from mmsparse.deploy import (UnsupportedExportError, VPPStreamStep,  # noqa
                             export_model)
from mmsparse.models.backbones.p3b_export import write_p3b_export  # noqa
from mmsparse.p3b import untrained_pruner  # noqa: E402
from mmsparse.registry import MODELS  # noqa: E402
from mmsparse.utils.sparse_layers import sparsify_model  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOL = 1e-4
ARCH = dict(embed_dims=32, num_layers=3, num_heads=4,
            feedforward_channels=64)
CLS = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch=ARCH, img_size=32,
                  patch_size=8),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=5,
              in_channels=32))
PYRAMID = dict(type='ViTPyramid', arch=dict(ARCH, num_layers=4),
               img_size=(48, 64), patch_size=16, drop_path_rate=0.,
               out_channels=16)


def _build(cfg, seed=0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model.eval()


def _slim_classifier():
    dense = _build(CLS)
    pruner = untrained_pruner(dense, 0.5, 'random', seed=0)
    slim_cfg = copy.deepcopy(CLS)
    slim_cfg['backbone'].update(type='SlimVisionTransformer',
                                slim_arch=pruner.slim_arch())
    slim = _build(slim_cfg)
    slim.load_state_dict(pruner.slim_state_dict(dense), strict=True)
    pruner.remove()
    return dense, slim, slim_cfg


@pytest.mark.parametrize('part', ['model', 'backbone'])
def test_classifier_dense_and_slim_export_equal(part, tmp_path):
    dense, slim, _ = _slim_classifier()
    import numpy as np
    import onnx
    stored = {}
    for name, model in (('dense', dense), ('slim', slim)):
        out = str(tmp_path / f'{name}_{part}.onnx')
        res = export_model(model, out, (32, 32), part=part)
        assert res['files'] == [out]
        assert res['max_abs_diff'] <= TOL
        stored[name] = sum(int(np.prod(t.dims)) for t in
                           onnx.load(out).graph.initializer)
    # the slim file holds the kept parameters only
    params = {k: sum(p.numel() for p in m.parameters())
              for k, m in (('dense', dense), ('slim', slim))}
    if part == 'model':
        assert abs(stored['dense'] - params['dense']) < 0.02 * params['dense']
        assert abs(stored['slim'] - params['slim']) < 0.02 * params['dense']
    assert stored['slim'] / stored['dense'] < 0.6


def test_dense_pyramid_backbone_export_equal(tmp_path):
    model = _build(PYRAMID)
    res = export_model(model, str(tmp_path / 'vit.onnx'), (48, 64),
                       part='backbone')
    assert res['max_abs_diff'] <= TOL
    assert len(res['diffs'][str(tmp_path / 'vit.onnx')]) == 4


def test_vpp_streaming_export_equal_and_needs_its_prior(tmp_path):
    vpp = _build(dict(type='VPPBackbone', backbone=copy.deepcopy(PYRAMID),
                      keep_ratio=[0.7, 0.4], prune_layer=[1, 2],
                      smooth_kernel=3))
    out = str(tmp_path / 'vpp.onnx')
    res = export_model(vpp, out, (48, 64), part='backbone')
    assert res['files'] == [str(tmp_path / 'vpp_first.onnx'), out]
    assert res['max_abs_diff'] <= TOL
    assert res['inputs'][out] == dict(
        frame=[1, 3, 48, 64], prior_key=[1, 12, 32], prior_value=[1, 12, 32],
        prior_valid=[1, 12])
    # the pruned step keeps exactly round(0.4 * 12) patches: static shapes
    import onnxruntime as ort
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert [i.name for i in sess.get_inputs()] == [
        'frame', 'prior_key', 'prior_value', 'prior_valid']
    assert all(isinstance(d, int) for i in sess.get_inputs()
               for d in i.shape)
    step = VPPStreamStep(vpp)
    with pytest.raises(UnsupportedExportError,
                       match="input 'prior_key' is missing"):
        step(torch.zeros(1, 3, 48, 64))


def test_unsupported_layer_fails_with_one_line(tmp_path):
    model = _build(CLS)
    with torch.no_grad():
        model.head.layers.head.weight.zero_()
    sparsify_model(model, min_sparsity=0.5)
    with pytest.raises(UnsupportedExportError) as err:
        export_model(model, str(tmp_path / 'x.onnx'), (32, 32))
    msg = str(err.value)
    assert "layer 'classifier.head.layers.head' (SparseLinear)" in msg
    assert 'supported:' in msg and '\n' not in msg
    vpp = _build(dict(type='VPPBackbone', backbone=copy.deepcopy(PYRAMID),
                      keep_ratio=0.5, smooth_kernel=3))
    holder = torch.nn.Sequential(vpp)
    from mmsparse.deploy import export_onnx
    with pytest.raises(UnsupportedExportError,
                       match=r"layer '0' \(VPPBackbone\).*VPPStreamStep"):
        export_onnx(holder, (torch.zeros(1, 3, 48, 64), ),
                    str(tmp_path / 'y.onnx'), ['frame'])


def test_tool_exports_a_p3b_export_folder(tmp_path, capsys):
    _, slim, slim_cfg = _slim_classifier()
    folder = str(tmp_path / 'p3b')
    write_p3b_export(folder, slim_cfg, slim.state_dict(),
                     slim_cfg['backbone']['slim_arch'])
    spec = importlib.util.spec_from_file_location(
        'pytorch2onnx', osp.join(ROOT, 'tools/deployment/pytorch2onnx.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'slim.onnx')
    assert tool.main([folder, '--out', out]) == 0
    text = capsys.readouterr().out
    assert 'max abs diff (onnxruntime vs PyTorch, fp32)' in text
    assert 'within tolerance 0.0001' in text and osp.isfile(out)


def test_slim_file_does_not_grow_with_the_batch(tmp_path):
    import numpy as np
    import onnx

    from mmsparse.deploy import ClassifierLogits, export_onnx
    _, slim, _ = _slim_classifier()
    module = ClassifierLogits(slim).eval()
    stored = []
    for batch in (1, 6):
        path = str(tmp_path / f'b{batch}.onnx')
        export_onnx(module, (torch.randn(batch, 3, 32, 32), ), path,
                    ['image'])
        graph = onnx.load(path).graph
        consts = [a.t for n in graph.node if n.op_type == 'Constant'
                  for a in n.attribute if a.type == a.TENSOR]
        stored.append(sum(int(np.prod(t.dims)) for t in
                          list(graph.initializer) + consts))
    assert stored[0] == stored[1]
