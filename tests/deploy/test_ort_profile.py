"""mmsparse.utils.ort_profile (onnxruntime's profiler per op type and block)
and benchmark_deploy.py --ort-profile / --slim-folds."""
import json
import os

import pytest
import torch
from script_loader import load_script

from mmsparse.utils.ort_profile import (BETWEEN, compare_blocks, compare_ops,
                                        summarise_trace, trace_runs)


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/analysis_tools/benchmark_deploy.py')


def _event(cat, name, ts, dur, op=None):
    e = dict(cat=cat, name=name, ts=ts, dur=dur, ph='X', pid=1, tid=1)
    if op:
        e['args'] = dict(op_name=op)
    return e


def _trace(run_us):
    """Session events, then per run three nodes (block 0, block 1, none)
    inside its ``model_run``; node times 10 / 20 / 30 µs times the run."""
    events = [_event('Session', 'session_initialization', 0, 50)]
    ts = 100
    for i, total in enumerate(run_us, 1):
        events.append(_event('Session', 'model_run', ts, total))
        for node, op, dur in (('/m/layers.0/qkv/MatMul', 'Gemm', 10),
                              ('/m/layers.1/norm/GatherElements',
                               'GatherElements', 20),
                              ('/m/head/Softmax', 'Softmax', 30)):
            events.append(_event('Node', node + '_kernel_time', ts + 1,
                                 dur * i, op))
        ts += total + 10
    # a node outside any run (e.g. during initialization) is not counted
    events.append(_event('Node', '/m/init_kernel_time', 5, 7, 'Cast'))
    return events


def test_trace_summary_takes_the_median_per_op_and_block(tmp_path):
    path = tmp_path / 'trace.json'
    # a warmup run, then totals 700, 400, 900 µs; node times 10 / 20 / 30 µs
    # times the run's index (2, 3, 4): medians from the 3rd run's nodes
    path.write_text(json.dumps(_trace([1000, 700, 400, 900])))
    runs = trace_runs(json.loads(path.read_text()))
    assert [r['run_us'] for r in runs] == [1000, 700, 400, 900]
    assert [len(r['nodes']) for r in runs] == [3] * 4
    s = summarise_trace(str(path), warmup=1, batch=2, top=2)
    assert s['rounds'] == 3
    assert s['run_ms'] == pytest.approx([0.35, 0.2, 0.45])
    assert s['total_ms'] == pytest.approx(0.35) and s['nodes'] == 3
    # node sums 120 / 180 / 240 µs -> 180, per image (batch 2)
    assert s['node_ms'] == pytest.approx(0.09)
    assert s['ops']['Gemm'] == dict(ms=pytest.approx(0.015), nodes=1)
    assert s['ops']['Softmax']['ms'] == pytest.approx(0.045)
    # outside the kernels per run: 0.29, 0.11, 0.33 ms -> 0.29
    assert s['ops'][BETWEEN]['ms'] == pytest.approx(0.29)
    assert s['blocks'] == {'0': pytest.approx(0.015),
                           '1': pytest.approx(0.03),
                           'other': pytest.approx(0.045)}
    assert [n[:2] for n in s['top_nodes']] == [
        ['/m/head/Softmax', 'Softmax'],
        ['/m/layers.1/norm/GatherElements', 'GatherElements']]
    assert s['top_nodes'][0][2] == pytest.approx(0.045)
    with pytest.raises(ValueError, match='no run after 4 warmup runs'):
        summarise_trace(str(path), warmup=4)


def _summary(total, nodes, **ops):
    ops = {k: dict(ms=v, nodes=1) for k, v in ops.items()}
    ops[BETWEEN] = dict(ms=total - sum(e['ms'] for e in ops.values()),
                        nodes=0)
    return dict(total_ms=total, nodes=nodes, ops=ops,
                blocks={'1': total / 2, '0': total / 4, 'other': total / 4})


def test_compare_ops_readings():
    dense = _summary(10.0, 2, MatMul=6.0, Gemm=2.0, Add=1.5,
                     SkipLayerNormalization=0.5)
    pruned = _summary(7.5, 3, MatMul=3.0, Gemm=1.0, Add=2.0,
                      GatherElements=1.0)
    out = compare_ops(dense, pruned, flops_ratio=2.0)
    rows = {r['op']: r for r in out['rows']}
    assert [r['op'] for r in out['rows']][-1] == 'all'
    assert rows['GatherElements']['dense_ms'] == 0
    assert rows['GatherElements']['ratio'] == 0
    assert rows[BETWEEN]['ratio'] == 0  # no time between nodes in dense
    assert rows['SkipLayerNormalization']['ratio'] == ''  # none in pruned
    assert sum(r['pruned_share'] for r in out['rows'][:-1]) == \
        pytest.approx(1)
    # the products run 2x faster (r = 0.5): without the gather 6.5 ms,
    # with Add at 0.75 ms (its dense 1.5 ms * r) 6.25 ms, without the
    # 0.5 ms between nodes 7 ms; the products themselves and an op type
    # the pruned graph does not run are not changed
    assert rows['GatherElements']['realised_if_no_extra'] == \
        pytest.approx(10 / 6.5 / 2)
    assert rows['Add']['realised_if_no_extra'] == pytest.approx(
        10 / 6.25 / 2)
    assert rows['SkipLayerNormalization']['realised_if_no_extra'] == \
        pytest.approx(10 / 7.5 / 2)
    assert rows[BETWEEN]['realised_if_no_extra'] == pytest.approx(10 / 7 / 2)
    assert rows['MatMul']['realised_if_no_extra'] == pytest.approx(
        10 / 7.5 / 2)
    assert rows['all']['realised_if_no_extra'] == pytest.approx(10 / 7.5 / 2)
    s = out['summary']
    assert s['speedup'] == pytest.approx(10 / 7.5)
    assert s['realised'] == pytest.approx(10 / 7.5 / 2)
    assert s['matmul_speedup'] == pytest.approx(2)
    assert s['realised_if_rest_shrank_like_matmul'] == pytest.approx(1)
    assert s['realised_if_rest_as_dense'] == pytest.approx(10 / 6 / 2)
    assert [b['block'] for b in compare_blocks(dense, pruned)] == [
        '0', '1', 'other']


def test_options(tool):
    args = tool.parse_args(['--sections', 'onnx', '--ort-profile',
                            '--slim-folds', 'out', 'both'])
    assert args.ort_profile and args.slim_folds == ['out', 'both']
    assert tool.SLIM_FOLDS['both'] == ('in', 'out')
    default = tool.parse_args([])
    assert not default.ort_profile and default.slim_folds == []
    with pytest.raises(SystemExit):
        tool.parse_args(['--slim-folds', 'mid'])


@pytest.fixture(scope='module')
def tiny_graphs(tmp_path_factory):
    """Tiny dense and P3B-slim classifiers exported at batch 2 (the rows of
    benchmark_deploy's onnx section)."""
    pytest.importorskip('onnx', reason='the deploy extra is not installed')
    pytest.importorskip('onnxruntime', reason='the deploy extra is not '
                        'installed')
    from test_onnx_export import _slim_classifier

    from mmsparse.deploy import ClassifierLogits, export_onnx
    from mmsparse.utils.benchmark import count_flops
    tmp = tmp_path_factory.mktemp('ort_profile')
    dense, slim, _ = _slim_classifier()
    x = torch.randn(2, 3, 32, 32)
    models = []
    for name, model in (('dense', dense), ('slim', slim)):
        module = ClassifierLogits(model).eval()
        path = str(tmp / f'{name}.onnx')
        export_onnx(module, (x, ), path, ['image'], ['logits'])
        models.append(('tiny', name, None, path, dict(image=x),
                       count_flops(module, x[:1])['flops'], 0.0, 0))
    return models, tmp


def test_tiny_model_profile_per_op_type(tiny_graphs):
    from mmsparse.utils.ort_profile import profile_onnx
    models, tmp = tiny_graphs
    traces = profile_onnx({m[1]: m[3] for m in models},
                          {m[1]: dict(image=m[4]['image'].numpy())
                           for m in models}, rounds=3, threads=1,
                          prefix=str(tmp / 'trace_'))
    s = {}
    for name, path in traces.items():
        assert os.path.dirname(path) == str(tmp)
        with open(path) as f:
            runs = trace_runs(json.load(f))
        assert len(runs) == 1 + 3  # the warmup and the profiled rounds
        s[name] = summary = summarise_trace(path, batch=2)
        assert summary['rounds'] == 3
        ops = summary['ops']
        for op in ('LayerNormalization', 'Softmax', 'Gemm'):
            assert ops[op]['ms'] > 0 and ops[op]['nodes'] > 0
        assert all(e['ms'] > 0 for k, e in ops.items() if k != BETWEEN)
        # totals as in the trace: medians of the profiled rounds' runs and
        # node sums, per image (batch 2)
        assert sorted(summary['run_ms']) == pytest.approx(
            sorted(r['run_us'] / 2e3 for r in runs[1:]))
        assert summary['total_ms'] == pytest.approx(
            sorted(r['run_us'] / 2e3 for r in runs[1:])[1])
        assert summary['node_ms'] == pytest.approx(sorted(
            sum(n[2] for n in r['nodes']) / 2e3 for r in runs[1:])[1])
        assert all(len(r['nodes']) == summary['nodes'] for r in runs[1:])
        assert summary['nodes'] == sum(e['nodes'] for e in ops.values())
        assert 0 < summary['node_ms'] <= summary['total_ms']
        # medians part by part add up only roughly
        assert sum(e['ms'] for e in ops.values()) == \
            pytest.approx(summary['total_ms'], rel=0.5)
        assert set(summary['blocks']) == {'0', '1', '2', 'other'}
        assert sum(summary['blocks'].values()) == \
            pytest.approx(summary['node_ms'], rel=0.5)
    # the slim graph gathers its blocks' kept inputs and its updates,
    # padded with a zero column, onto the full width (2 sub-blocks per
    # block, 3 blocks: 12 gathers more than the dense graph's cls token
    # gather, 6 pads); neither graph scatters or gathers elements
    assert s['slim']['ops']['Gather']['nodes'] == \
        s['dense']['ops']['Gather']['nodes'] + 12
    assert s['slim']['ops']['Pad']['nodes'] == 6
    assert 'Pad' not in s['dense']['ops']
    for summary in s.values():
        assert 'GatherElements' not in summary['ops']
        assert 'ScatterElements' not in summary['ops']
    cmp = compare_ops(s['dense'], s['slim'], 2.0)
    rows = {r['op']: r for r in cmp['rows']}
    assert rows['Pad']['realised_if_no_extra'] > cmp['summary']['realised']


def test_tool_ort_profile_pairs(tool, tiny_graphs):
    models, tmp = tiny_graphs
    prefix = tmp / 'tool'
    prefix.mkdir()
    profiles = tool.ort_profile_pairs(models, rounds=2, threads=1,
                                      prefix=str(prefix / 'trace_'))
    assert os.listdir(prefix) == []  # the traces are deleted
    assert len(profiles) == 1
    p = profiles[0]
    assert (p['model'], p['baseline'], p['variant']) == ('tiny', 'dense',
                                                         'slim')
    assert p['flops_ratio'] == pytest.approx(models[0][5] / models[1][5])
    assert p['dense']['exported_ops']['LayerNormalization'] == 7
    # as exported: a pad for each partial norm's weight and bias and for
    # each update (onnxruntime folds the norms' ones into constants)
    assert p['pruned']['exported_ops']['Pad'] == 6 * 2 + 6
    assert 'ScatterElements' not in p['pruned']['exported_ops']
    assert p['rows'][-1]['op'] == 'all'
    assert p['rows'][-1]['pruned_ms'] == p['pruned']['total_ms']
    md = tool._ort_profile_md(profiles)
    assert md.startswith('### onnxruntime profile: tiny, dense vs slim')
    assert '| op | dense_nodes | pruned_nodes | dense_ms |' in md
    assert '| Pad | 0 | 6 | 0 |' in md
    assert '| block | dense_ms | pruned_ms | ratio |' in md
