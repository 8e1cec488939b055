"""tools/model_converters/export_sparse_checkpoint.py and
tools/analysis_tools/sparsity_report.py on a magnitude-pruned model."""
import json
import os.path as osp
import runpy
import sys

import pytest
import torch
from art_helpers import tiny_cfg
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmsparse.art import apply_masks_, global_magnitude_masks, prunable_weights

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _run_tool(path, args, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [path] + [str(a) for a in args])
    runpy.run_path(osp.join(ROOT, path), run_name='__main__')


@pytest.fixture(scope='module')
def pruned_checkpoint(tmp_path_factory):
    work = tmp_path_factory.mktemp('tools')
    cfg = Config(tiny_cfg(work, [], widths=(32, 64)))
    cfg_path = osp.join(work, 'tiny_cfg.py')
    cfg.dump(cfg_path)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    weights = prunable_weights(model)
    apply_masks_(weights, global_magnitude_masks(weights, 0.98))
    ckpt = osp.join(work, 'pruned.pth')
    torch.save(
        dict(
            meta=dict(epoch=3),
            state_dict=model.state_dict(),
            optimizer=dict(state={}),
            art_state=dict(phase='finetune')), ckpt)
    return cfg_path, ckpt, model, work


def test_export_sparse_checkpoint_roundtrip(pruned_checkpoint, monkeypatch,
                                            capsys):
    cfg_path, ckpt, model, work = pruned_checkpoint
    out = osp.join(work, 'sparse.pth')
    _run_tool('tools/model_converters/export_sparse_checkpoint.py',
              [ckpt, out, '--config', cfg_path], monkeypatch)
    text = capsys.readouterr().out
    assert 'verified: strict load into ImageClassifier' in text
    ratio = float(text.split('(ratio ')[1].split(')')[0])
    dense_only = osp.join(work, 'dense_only.pth')
    torch.save(dict(meta=dict(epoch=3), state_dict=model.state_dict()),
               dense_only)
    assert osp.getsize(out) / osp.getsize(dense_only) == pytest.approx(
        ratio, rel=0.05)
    # 98 % of the conv/linear weights are zero; BN and biases stay dense
    assert ratio < 0.12
    from mmsparse.utils.sparse_checkpoint import load_sparse_checkpoint
    loaded = load_sparse_checkpoint(out)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded['state_dict'][key], value), key


def test_sparsity_report(pruned_checkpoint, monkeypatch, capsys):
    cfg_path, ckpt, model, work = pruned_checkpoint
    out = osp.join(work, 'report.json')
    _run_tool('tools/analysis_tools/sparsity_report.py',
              [ckpt, '--config', cfg_path, '--out', out], monkeypatch)
    text = capsys.readouterr().out
    with open(out) as f:
        report = json.load(f)
    weights = prunable_weights(model)
    assert [layer['name'] for layer in report['layers']] == list(weights)
    total = sum(w.numel() for w in weights.values())
    assert report['total'] == total
    assert report['zeros'] == round(0.98 * total)
    assert '| **global** |' in text
    # without a config: the same layers by the name/shape rule, and the
    # sparse export is read as well
    sparse = osp.join(work, 'sparse_for_report.pth')
    _run_tool('tools/model_converters/export_sparse_checkpoint.py',
              [ckpt, sparse], monkeypatch)
    _run_tool('tools/analysis_tools/sparsity_report.py',
              [sparse, '--out', out], monkeypatch)
    with open(out) as f:
        report2 = json.load(f)
    assert report2['zeros'] == report['zeros']
    assert report2['total'] == report['total']
