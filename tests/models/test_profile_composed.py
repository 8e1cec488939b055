"""tools/analysis_tools/profile_composed.py: op categories of a real profile
and the toy run of every benchmark_composed row."""
import json
import logging

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from script_loader import load_script
from torch.profiler import ProfilerActivity, profile, record_function

TOY_VPP = 'configs/toy/vpp_mask2former_vit_toy-ytvis21.py'
TOY_COMPOSED = 'configs/composed/toy/p3b-vpp_mask2former_vit_toy-ytvis21.py'


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/analysis_tools/profile_composed.py')


def test_children_take_the_category_of_their_outermost_op(tool):
    """The bias copy of addmm is GEMM time, the kernel and allocations of
    SDPA attention time, the copy inside index_put_ gather/scatter time; a
    copy outside any categorised op is copy/layout."""
    lin = torch.nn.Linear(16, 24)
    x, q = torch.randn(1, 10, 16), torch.randn(1, 2, 10, 8)
    idx = torch.tensor([0, 3])
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as p:
        with record_function(tool.FRAME):
            lin(x)
            F.scaled_dot_product_attention(q, q, q)
            x.index_select(-1, idx)
            x[0].clone().index_put_((idx, ), torch.zeros(2, 16))
            F.layer_norm(x, (16, ))
            x.transpose(1, 2).contiguous()
    seen = {}
    for e in p.events():
        if not tool._is_annotation(e):
            parent = e.cpu_parent.name if e.cpu_parent else None
            seen.setdefault((e.name, parent), tool.event_category(e))
    assert seen[('aten::addmm', 'aten::linear')] == 'gemm'
    assert seen[('aten::copy_', 'aten::addmm')] == 'gemm'
    assert seen[('aten::scaled_dot_product_attention', tool.FRAME)] == \
        'attention'
    sdpa_children = [c for (n, parent), c in seen.items()
                     if parent and 'scaled_dot_product' in parent]
    assert sdpa_children and set(sdpa_children) == {'attention'}
    assert seen[('aten::index_select', tool.FRAME)] == 'gather/scatter'
    inside_put = [c for (n, parent), c in seen.items()
                  if parent in ('aten::index_put_', 'aten::_index_put_impl_')]
    assert inside_put and set(inside_put) == {'gather/scatter'}
    assert seen[('aten::native_layer_norm', 'aten::layer_norm')] == 'norm'
    assert seen[('aten::copy_', 'aten::clone')] == 'copy/layout'
    assert tool.op_category('aten::some_new_op') == 'other'


def test_gemm_flops_from_shapes_match_the_profiler(tool):
    """The shape count (used where the profiler gives none) equals the
    profiler's own FLOPs of mm / addmm / bmm."""
    a, b, c = torch.randn(7, 5), torch.randn(5, 3), torch.randn(3)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True,
                 with_flops=True) as p:
        torch.mm(a, b)
        torch.addmm(c, a, b)
        torch.bmm(a[None].expand(2, -1, -1), b[None].expand(2, -1, -1))
    kernels = [e for e in p.events() if e.name in (
        'aten::mm', 'aten::addmm', 'aten::bmm')]
    assert len(kernels) == 3
    for e in kernels:
        assert e.flops > 0
        flops, e.flops = e.flops, 0
        assert tool._gemm_flops(e) == flops


def test_toy_profile_of_every_row(tool, tmp_path, monkeypatch, capfd):
    """One profiled frame per row of benchmark_composed's toy rows: the
    categories and the regions sum to the op total, every row spends time
    in GEMMs and counts GEMM FLOPs, VPP rows in their selector, slim rows in
    the channel gather/scatter of the slim blocks. Quiet: the progress
    lines and the tables, no init_weights report of the models built."""
    torch.set_num_threads(1)
    # a fresh current MMLogger printing to the captured stdout (not an
    # earlier Runner's, whose FileHandler would take the report)
    logger = MMLogger('test_profile_composed', logger_name='mmengine')
    monkeypatch.setitem(MMLogger._instance_dict, 'test_profile_composed',
                        logger)
    logger.setLevel(logging.DEBUG)
    out = tool.main([
        '--vpp-config', TOY_VPP, '--composed-config', TOY_COMPOSED,
        '--vpp', '1:0.4', '--shape', '64', '96', '--frames', '2',
        '--warmup', '0', '--calls', '1', '--top', '5',
        '--profile-out', str(tmp_path / 'profile.json')])
    result = json.load(open(out))
    assert [r['model'] for r in result['rows']] == [
        'dense', 'dense + VPP 1:0.4', 'P3B-slim', 'P3B-slim + VPP 1:0.4']
    for row in result['rows']:
        p = row['profile']
        total = p['op_self_ms']
        assert total > 0 and p['frame_ms'] >= total
        cats = p['categories']
        assert sum(c['ms'] for c in cats.values()) == pytest.approx(total)
        assert sum(c['share'] for c in cats.values()) == pytest.approx(1)
        assert sum(r['ms'] for r in p['regions'].values()) == \
            pytest.approx(total)
        assert cats['gemm']['share'] > 0 and cats['attention']['ms'] > 0
        assert p['gemm']['GFLOPs'] > 0 and p['gemm']['GFLOP_per_s'] > 0
        assert p['regions']['ViT blocks']['ms'] > 0
        assert p['regions']['pyramid']['ms'] > 0
        assert len(p['top_ops']) == 5
        vpp = 'VPP' in row['model']
        assert (p['regions']['VPP selector']['ms'] > 0) == vpp
        if 'slim' in row['model']:
            assert cats['gather/scatter']['ms'] > 0
    # GEMM FLOPs follow the slim widths
    dense, slim = (result['rows'][i]['profile']['gemm']['GFLOPs']
                   for i in (0, 2))
    assert slim < dense
    md = open(str(tmp_path / 'profile.md')).read()
    assert '### categories' in md and 'gemm ms (%)' in md
    out, err = capfd.readouterr()
    assert 'init_weights' not in out + err and 'torch.Size' not in out + err
    assert 'making a slim architecture' in out
    assert 'P3B-slim + VPP 1:0.4: FLOPs counted' in out
    assert 'profiling dense + VPP 1:0.4 (1 frames)' in out
    assert '### categories' in out and 'wrote ' in out
    assert logger.level == logging.DEBUG
