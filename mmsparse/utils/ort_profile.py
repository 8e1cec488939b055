"""onnxruntime's own profiler: where a graph's time goes, per op type.

:func:`profile_onnx` runs ONNX files in onnxruntime sessions with
``SessionOptions.enable_profiling`` (interleaved rounds, as
:func:`mmsparse.utils.benchmark.time_interleaved`) and returns the JSON
traces onnxruntime writes. :func:`summarise_trace` reads one trace: the
runs (``model_run`` events) and, inside each, the kernel time of every node
(``Node`` events, named ``<node>_kernel_time``, with ``args.op_name``) of
the graph as onnxruntime runs it, after its own fusions (``Gemm`` from
MatMul + Add, ``FusedMatMul``, ``SkipLayerNormalization``, ``Gelu``, ...).
Every number is a median over the profiled runs, taken part by part (an
op type's time in a run, a block's, the run's total), so that one run's
stall in one node does not land on one op type; the parts therefore add up
to the total only roughly. :func:`compare_ops`
and :func:`compare_blocks` put a dense graph and a pruned one side by side.

Times are per image (divided by the batch); node counts are per run. The
profiler adds its own cost per node: compare profiled totals with each
other, not with unprofiled timings.
"""
import bisect
import json
import re
from collections import Counter
from statistics import median
from typing import Dict, List, Sequence

#: Op types of the matrix products (onnxruntime's fused names included).
MATMUL_OPS = ('MatMul', 'FusedMatMul', 'Gemm')
#: Block index in an exported node name (``.../layers.3/attn/...``).
BLOCK_RE = re.compile(r'(?:layers|blocks)\.(\d+)(?:/|$)')
#: Pseudo op type: run time outside the node kernels (executor, copies).
BETWEEN = '(between nodes)'
_SUFFIX = '_kernel_time'


def profile_onnx(paths: Dict[str, str],
                 feeds: Dict[str, dict],
                 rounds: int,
                 threads: int,
                 prefix: str,
                 warmup: int = 1) -> Dict[str, str]:
    """Run ONNX files with onnxruntime's profiler, interleaved.

    Every round runs each file once, in order (``warmup`` unrecorded rounds
    first; their runs are in the trace too, see :func:`summarise_trace`).

    Args:
        paths (dict): Name -> ``.onnx`` file.
        feeds (dict): Name -> its inputs (input name -> numpy array).
        rounds (int): Profiled rounds after the warmup.
        threads (int): Intra-op threads (inter-op: 1).
        prefix (str): Path prefix of the trace files (onnxruntime appends
            a date and ``.json``); the names are appended to it.
        warmup (int): Rounds before. Defaults to 1.

    Returns:
        dict: Name -> the trace file.
    """
    import onnxruntime as ort
    if rounds < 1:
        raise ValueError(f'profile_onnx: rounds must be >= 1, got {rounds}')
    sessions = {}
    for i, (name, path) in enumerate(paths.items()):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.enable_profiling = True
        opts.profile_file_prefix = f'{prefix}{i}'
        sessions[name] = ort.InferenceSession(
            path, opts, providers=['CPUExecutionProvider'])
    for _ in range(warmup + rounds):
        for name, session in sessions.items():
            session.run(None, feeds[name])
    return {name: s.end_profiling() for name, s in sessions.items()}


def trace_runs(events: List[dict]) -> List[dict]:
    """The runs of a trace, in order.

    Args:
        events (list[dict]): The trace (onnxruntime's JSON list).

    Returns:
        list[dict]: Per ``model_run`` event: ``run_us`` (its duration) and
        ``nodes`` (``(node name, op type, µs)`` of the node kernels inside
        it, in order).
    """
    runs = sorted((e for e in events if e.get('cat') == 'Session'
                   and e.get('name') == 'model_run'), key=lambda e: e['ts'])
    out = [dict(run_us=float(r['dur']), nodes=[]) for r in runs]
    starts = [r['ts'] for r in runs]
    for e in events:
        if e.get('cat') != 'Node' or not e['name'].endswith(_SUFFIX):
            continue
        i = bisect.bisect_right(starts, e['ts']) - 1
        if i >= 0 and e['ts'] <= starts[i] + runs[i]['dur']:
            out[i]['nodes'].append((e['name'][:-len(_SUFFIX)],
                                    e['args'].get('op_name', '?'),
                                    float(e['dur'])))
    return out


def block_of(node: str) -> str:
    """Block index of a node name ('other' outside the blocks)."""
    m = BLOCK_RE.search(node)
    return m.group(1) if m else 'other'


def summarise_trace(path: str, warmup: int = 1, batch: int = 1,
                    top: int = 10) -> dict:
    """Node time per op type and per block of one profiled graph.

    Args:
        path (str): The trace file.
        warmup (int): Runs at the start to drop. Defaults to 1.
        batch (int): Images per run (times are per image). Defaults to 1.
        top (int): Slowest nodes to list. Defaults to 10.

    Returns:
        dict: ``rounds``, ``run_ms`` (per round) and, each the median over
        the rounds: ``total_ms`` (the ``model_run``), ``node_ms`` (the sum
        of the node kernels), ``ops`` (op type -> ``ms``, ``nodes``, the
        count per run; :data:`BETWEEN` holds the run time outside the
        kernels), ``blocks`` (block index or 'other' -> ms); ``nodes`` (per
        run) and ``top_nodes`` (``[name, op, ms]``, slowest first by their
        median).
    """
    with open(path) as f:
        runs = trace_runs(json.load(f))[warmup:]
    if not runs:
        raise ValueError(f'summarise_trace: {path} has no run after '
                         f'{warmup} warmup runs')
    scale = 1e-3 / batch
    per_op, per_block, per_node = {}, {}, {}
    for k, run in enumerate(runs):
        for node, op, us in run['nodes']:
            for table, key in ((per_op, op), (per_block, block_of(node)),
                               (per_node, (node, op))):
                row = table.setdefault(key, [0.0] * len(runs))
                row[k] += us * scale
    counts = Counter(op for _, op, _ in runs[0]['nodes'])
    ops = {op: dict(ms=median(v), nodes=counts[op])
           for op, v in per_op.items()}
    node_sums = [sum(us for *_, us in r['nodes']) * scale for r in runs]
    totals = [r['run_us'] * scale for r in runs]
    ops[BETWEEN] = dict(ms=median([t - n for t, n in zip(totals, node_sums)]),
                        nodes=0)
    slowest = sorted(per_node.items(), key=lambda kv: -median(kv[1]))[:top]
    return dict(rounds=len(runs), run_ms=totals, total_ms=median(totals),
                node_ms=median(node_sums), nodes=len(runs[0]['nodes']),
                ops=ops,
                blocks={b: median(v) for b, v in per_block.items()},
                top_nodes=[[n, op, median(v)] for (n, op), v in slowest])


def _matmul_ms(summary: dict) -> float:
    return sum(summary['ops'].get(op, {}).get('ms', 0.0) for op in MATMUL_OPS)


def compare_ops(dense: dict, pruned: dict, flops_ratio: float) -> dict:
    """A dense and a pruned graph's op types side by side.

    ``r`` = pruned / dense time of the matrix products (:data:`MATMUL_OPS`).
    An op type's ``realised_if_no_extra`` is the realised fraction of the
    FLOPs ratio (speed-up / ``flops_ratio``) if the pruned graph spent on
    it no more than the dense graph's time times ``r`` (0 for an op type
    the dense graph does not run), all else as profiled.

    Args:
        dense (dict): :func:`summarise_trace` of the dense graph.
        pruned (dict): The same of the pruned graph.
        flops_ratio (float): Dense / pruned FLOPs.

    Returns:
        dict: ``rows`` (per op type, the pruned graph's slowest first:
        ``op``, ``dense_nodes``, ``pruned_nodes``, ``dense_ms``,
        ``pruned_ms``, ``ratio`` (dense / pruned ms, '' for a zero),
        ``pruned_share`` (of its total), ``realised_if_no_extra``; then a
        row ``all`` with the totals) and ``summary``: ``speedup`` and
        ``realised`` (profiled totals), ``matmul_speedup``,
        ``realised_if_rest_shrank_like_matmul`` (every other op type's
        dense time times ``r``: ``matmul_speedup / flops_ratio``) and
        ``realised_if_rest_as_dense`` (the pruned products plus the dense
        graph's other time).
    """
    d_total, p_total = dense['total_ms'], pruned['total_ms']
    d_mm, p_mm = _matmul_ms(dense), _matmul_ms(pruned)
    r = p_mm / d_mm if d_mm else 1.0

    def realised(total: float) -> float:
        return d_total / total / flops_ratio

    rows = []
    ops = set(dense['ops']) | set(pruned['ops'])
    for op in sorted(ops, key=lambda o: -pruned['ops'].get(
            o, {}).get('ms', 0.0)):
        d = dense['ops'].get(op, dict(ms=0.0, nodes=0))
        p = pruned['ops'].get(op, dict(ms=0.0, nodes=0))
        capped = min(p['ms'], d['ms'] * r)
        rows.append(dict(
            op=op, dense_nodes=d['nodes'], pruned_nodes=p['nodes'],
            dense_ms=d['ms'], pruned_ms=p['ms'],
            ratio=d['ms'] / p['ms'] if p['ms'] > 0 else '',
            pruned_share=p['ms'] / p_total,
            realised_if_no_extra=realised(p_total - p['ms'] + capped)))
    rows.append(dict(op='all', dense_nodes=dense['nodes'],
                     pruned_nodes=pruned['nodes'], dense_ms=d_total,
                     pruned_ms=p_total, ratio=d_total / p_total,
                     pruned_share=1.0, realised_if_no_extra=realised(
                         p_total)))
    summary = dict(
        speedup=d_total / p_total, realised=realised(p_total),
        matmul_speedup=d_mm / p_mm if p_mm else '',
        realised_if_rest_shrank_like_matmul=realised(d_total * r),
        realised_if_rest_as_dense=realised(p_mm + d_total - d_mm))
    return dict(rows=rows, summary=summary)


def compare_blocks(dense: dict, pruned: dict) -> List[dict]:
    """Per block (and 'other'): dense and pruned ms and their ratio."""
    keys = set(dense['blocks']) | set(pruned['blocks'])
    order = sorted((k for k in keys if k != 'other'), key=int)
    rows = []
    for k in order + (['other'] if 'other' in keys else []):
        d, p = dense['blocks'].get(k, 0.0), pruned['blocks'].get(k, 0.0)
        rows.append(dict(block=k, dense_ms=d, pruned_ms=p,
                         ratio=d / p if p > 0 else ''))
    return rows


def exported_op_counts(path: str) -> Dict[str, int]:
    """Nodes per op type of an ONNX file as exported (before onnxruntime's
    fusions), most frequent first."""
    import onnx
    graph = onnx.load(path, load_external_data=False).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


OP_COLS: Sequence[str] = ('op', 'dense_nodes', 'pruned_nodes', 'dense_ms',
                          'pruned_ms', 'ratio', 'pruned_share',
                          'realised_if_no_extra')
BLOCK_COLS: Sequence[str] = ('block', 'dense_ms', 'pruned_ms', 'ratio')
