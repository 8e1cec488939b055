import torch
import torch.nn as nn

from mmsparse.models.backbones.vit_pyramid import Attention
from mmsparse.utils.benchmark import (ModuleTimer, count_flops, format_table,
                                      time_call)


def test_flops_count_fused_attention_like_explicit():
    """SDPA has no fvcore counter upstream: mmsparse adds one."""
    torch.manual_seed(0)
    fused = Attention(64, 4, fused=True)
    explicit = Attention(64, 4, fused=False)
    x = torch.randn(2, 50, 64)
    f_fused = count_flops(fused, x)
    f_explicit = count_flops(explicit, x)
    linear = 2 * 50 * (64 * 192 + 64 * 64)  # qkv + proj
    matmuls = 2 * 2 * 4 * 50 * 50 * 16  # QK^T and AV
    assert f_fused['flops'] == linear + matmuls
    assert f_explicit['flops'] == f_fused['flops']
    assert 'aten::scaled_dot_product_attention' not in f_fused['uncounted']


def test_time_call_and_table():
    calls = []
    stats = time_call(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 5 and len(stats['runs']) == 3
    assert stats['min'] <= stats['median'] <= max(stats['runs'])
    table = format_table([dict(a='x', b=1.23456)], ['a', 'b'])
    assert table.splitlines()[2] == '| x | 1.235 |'
    lin = nn.Linear(8, 4)
    assert count_flops(lin, torch.randn(3, 8))['flops'] == 3 * 8 * 4


class _Sleepy(nn.Module):
    """Sleeps ``seconds`` and calls its child (if any) inside."""

    def __init__(self, seconds, child=None):
        super().__init__()
        self.seconds, self.child = seconds, child

    def forward(self, x):
        import time
        time.sleep(self.seconds)
        return self.child(x) if self.child is not None else x


def test_module_timer_sums_parts_and_counts_nested_calls_once():
    import time
    inner = _Sleepy(0.02)
    outer = _Sleepy(0.01, inner)
    other = _Sleepy(0.015)
    timer = ModuleTimer({'outer': [outer, inner], 'inner': [inner],
                         'other': [other]})
    start = time.perf_counter()
    outer(1)
    other(1)
    wall = time.perf_counter() - start
    s = timer.seconds
    # the nested call of ``inner`` counts once inside ``outer`` (twice, the
    # parts would add up to more than the wall-clock time)
    assert s['outer'] >= 0.03 and s['other'] >= 0.015
    assert 0.02 <= s['inner'] < s['outer']
    assert s['outer'] + s['other'] <= wall
    timer.reset()
    assert timer.seconds == {'outer': 0.0, 'inner': 0.0, 'other': 0.0}
    timer.remove()
    outer(1)
    assert timer.seconds['outer'] == 0.0


def test_count_flops_by_module():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    flops = count_flops(model, torch.randn(3, 8), by_module=['0', '2', 'x'])
    assert flops['module_flops'] == {'0': 3 * 8 * 16, '2': 3 * 16 * 4,
                                     'x': 0.0}
    assert flops['flops'] == 3 * 8 * 16 + 3 * 16 * 4
