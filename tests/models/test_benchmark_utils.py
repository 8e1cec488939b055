import torch
import torch.nn as nn

from mmsparse.models.backbones.vit_pyramid import Attention
from mmsparse.utils.benchmark import count_flops, format_table, time_call


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
