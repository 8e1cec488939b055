"""tools/analysis_tools/benchmark_deploy.py: the --profile split of the art
rows (prunable layers vs the rest), its columns, and the kernel options."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope
from script_loader import load_script
from test_sparse_layers import VIT_CLS

from mmsparse.registry import MODELS
from mmsparse.utils.sparse_layers import CSR_KERNELS

#: nn.Linear layers of VIT_CLS: qkv, proj, fc1, fc2 per block and the head
VIT_LINEARS = 2 * 4 + 1
OLD_ART_COLS = ['model', 'batch', 'sparsity', 'real_sparsity', 'layers',
                'dense_ms', 'sparse_ms', 'speedup', 'round_ratio_range',
                'max_abs_diff']


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/analysis_tools/benchmark_deploy.py')


class _Clock:
    """A clock that only the modules below advance."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class _Tick(nn.Module):
    """Advances the clock by the next of ``steps`` (cycling) per call."""

    def __init__(self, clock, *steps):
        super().__init__()
        self.clock, self.steps, self.i = clock, steps, 0

    def forward(self, x):
        self.clock.t += self.steps[self.i % len(self.steps)]
        self.i += 1
        return x


class _TickLayer(nn.Module):
    """A 'prunable' layer: a ``_Tick`` inside a module of its own."""

    def __init__(self, clock, *steps):
        super().__init__()
        self.tick = _Tick(clock, *steps)

    def forward(self, x):
        return self.tick(x)


def _toy(clock, layer_step, rest_steps=(0.5, )):
    """rest, layer, rest, layer, 0.25 s of rest: two prunable calls."""
    return nn.Sequential(_Tick(clock, *rest_steps),
                         _TickLayer(clock, layer_step), _Tick(clock, 0.5),
                         _TickLayer(clock, layer_step), _Tick(clock, 0.25))


def test_profile_split_attributes_each_second_once(tool):
    clock = _Clock()
    dense, sparse = _toy(clock, 0.75), _toy(clock, 0.125)
    layers = {'dense': [dense[1], dense[3]], 'sparse': [sparse[1], sparse[3]]}
    split = tool.profile_split(
        {k: (lambda m=m: m(None), layers[k])
         for k, m in (('dense', dense), ('sparse', sparse))},
        rounds=3, clock=clock)
    assert split['dense'] == dict(total=[2.75] * 3, prunable=[1.5] * 3,
                                  calls=[2] * 3)
    assert split['sparse'] == dict(total=[1.5] * 3, prunable=[0.25] * 3,
                                   calls=[2] * 3)
    # 1 warmup + 3 rounds, interleaved, and the hooks are gone afterwards
    assert dense[0].i == sparse[0].i == 4
    assert not dense[1]._forward_pre_hooks and not dense[1]._forward_hooks
    row = tool.profile_fields(split['dense'], split['sparse'], target=2.0)
    assert row['dense_prof_ms'] == 2750.0
    assert row['dense_prunable_ms'] + row['dense_rest_ms'] == 2750.0
    assert (row['dense_prunable_ms'], row['sparse_prunable_ms']) == (1500.0,
                                                                     250.0)
    assert row['sparse_prof_ms'] == row['sparse_prunable_ms'] + \
        row['sparse_rest_ms'] == 1500.0
    assert row['prunable_speedup'] == 6.0
    assert row['amdahl_bound'] == 2750.0 / 1250.0
    # 2x: 1375 ms in all, the sparse rest takes 1250, the layers may take
    # 125 ms, 12x less than the dense layers' 1500 ms
    assert row['need_for_2x'] == pytest.approx(12.0)
    assert row['prunable_calls'] == dict(dense=2, sparse=2)
    # 3x would need the rest alone to fit in 2750 / 3 ms
    row = tool.profile_fields(split['dense'], split['sparse'])
    assert row['need_for_3x'] == 'unreachable'


def test_split_takes_all_parts_from_the_median_round(tool):
    clock = _Clock()
    # the rest varies per round (warmup first): totals 2.75 + 0 / 2 / 1
    model = _toy(clock, 0.75, rest_steps=(0.5, 0.5, 2.5, 1.5))
    split = tool.profile_split(
        {'m': (lambda: model(None), [model[1], model[3]])}, rounds=3,
        clock=clock)
    assert split['m']['total'] == [2.75, 4.75, 3.75]
    ms = tool.split_ms(split['m'])
    assert ms == dict(total=3750.0, prunable=1500.0, rest=2250.0, calls=2)
    # an even count takes the lower median, still one real round
    two = {k: v[:2] for k, v in split['m'].items()}
    assert tool.split_ms(two)['total'] == 2750.0


def _tiny_vit(seed=0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(VIT_CLS))
    model.init_weights()
    return model.eval()


def test_art_rows_profile_on_a_tiny_vit(tool):
    base = _tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    rows = tool.art_rows('tiny-vit', base, x, [0.9], rounds=2,
                         linear_only=True,
                         kernels=CSR_KERNELS, profile_rounds=2)
    assert [r['kernel'] for r in rows] == list(CSR_KERNELS)
    for row in rows:
        assert row['layers'] == VIT_LINEARS
        assert row['max_abs_diff'] <= 1e-5
        # every prunable layer is called (and timed) once per forward, in
        # the dense and the sparse model alike
        assert row['prunable_calls'] == dict(dense=VIT_LINEARS,
                                             sparse=VIT_LINEARS)
        for part in ('dense', 'sparse'):
            prof = row['times'][f'{part}_profile']
            assert len(prof['total']) == 2
            assert all(0 < p < t
                       for p, t in zip(prof['prunable'], prof['total']))
            total = row[f'{part}_prof_ms']
            assert row[f'{part}_prunable_ms'] + row[f'{part}_rest_ms'] == \
                pytest.approx(total, rel=1e-12)
            assert 1e3 * min(prof['total']) <= total <= \
                1e3 * max(prof['total'])
        assert row['amdahl_bound'] == pytest.approx(
            row['dense_prof_ms'] / row['dense_rest_ms'])
        assert row['amdahl_bound'] > 1
        need = row['need_for_3x']
        assert need == 'unreachable' or need > 0
    table = tool.format_table(rows, tool._profile_cols(True))
    assert table.splitlines()[0].startswith(
        '| model | batch | sparsity | kernel | dense_prof_ms |')
    assert len(table.splitlines()) == 2 + len(CSR_KERNELS)
    assert tool.art_break_even(rows).keys() == {
        f'tiny-vit batch 2 {k}' for k in CSR_KERNELS}


def test_without_the_options_the_art_rows_are_unchanged(tool):
    rows = tool.art_rows('tiny-vit', _tiny_vit(), torch.randn(1, 3, 32, 32),
                         [0.9, 0.98], rounds=1, linear_only=True)
    assert tool._art_cols() == OLD_ART_COLS
    for row in rows:
        assert set(row) == set(OLD_ART_COLS) | {'times'}
        assert set(row['times']) == {'dense', 'sparse'}
    assert list(tool.art_break_even(rows)) == ['tiny-vit batch 1']


def test_options(tool):
    args = tool.parse_args(['--large-sparsities', '--profile',
                            '--art-models', 'vit-s', '--art-kernels', 'csr',
                            'csr_keep_layout'])
    assert args.large_sparsities == [] and args.profile
    assert args.art_models == ['vit-s']
    assert args.art_kernels == ['csr', 'csr_keep_layout']
    default = tool.parse_args([])
    assert not default.profile and default.art_kernels == ['csr']
    assert default.large_sparsities == [0.9, 0.98, 0.995]
    with pytest.raises(SystemExit):
        tool.parse_args(['--art-kernels', 'bsr'])


def test_kernels_section_times_the_chosen_kernels(tool):
    args = tool.parse_args(['--rounds', '1', '--rounds-large', '1',
                            '--batch', '1', '--kernel-sparsities', '0.98',
                            '--kernels', 'csr', 'csr_keep_layout'])
    rows = tool.bench_kernels(args)
    assert len(rows) == 2 * len(tool.VIT_LINEARS)
    assert tool._kernel_cols(args.kernels) == [
        'layer', 'tokens', 'sparsity', 'dense_ms', 'csr_ms', 'csr_speedup',
        'csr_keep_layout_ms', 'csr_keep_layout_speedup', 'max_abs_diff']
    # random normal weights and inputs: outputs of size ~10-40
    assert all(r['max_abs_diff'] < 1e-4 for r in rows)
    assert all(len(r['times']['csr_keep_layout']) == 1 for r in rows)
