"""mmsparse.utils.art_calibration: ρ = |∂R/∂w| / √v̂ against AdamW's state,
and the calibration lines, on a tiny model after a few AdamW steps."""
import pytest
import torch

from mmsparse.art import hypersparse_grad
from mmsparse.utils.art_calibration import (adamw_ratios, calibration_report,
                                            mask_lines)


def _trained():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99),
                            eps=1e-8)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 8)).pow(2).sum().backward()
        opt.step()
    weights = {'0.weight': model[0].weight, '1.weight': model[1].weight}
    return weights, opt


def test_ratios_are_the_regularizer_over_adamws_scale():
    weights, opt = _trained()
    out = adamw_ratios(weights, opt, 0.5)
    assert out['step'] == 3
    w = weights['1.weight']
    g = hypersparse_grad(list(weights.values()), 0.5)[1]
    v_hat = opt.state[w]['exp_avg_sq'] / (1 - 0.99**3)
    expected = (g.abs() / (v_hat.sqrt() + 1e-8)).flatten()
    assert torch.allclose(out['rho'][8 * 16:], expected)
    assert torch.equal(out['magnitude'][:8 * 16],
                       weights['0.weight'].detach().abs().flatten())


def test_calibration_lines():
    weights, opt = _trained()
    lines = calibration_report(weights, opt, 0.5, lambda_init=1e-3, eta=2.0,
                               steps=3, max_norm=1.0, sample=50)
    assert lines[0] == '160 prunable weights, κ = 0.5, AdamW step 3 of the ' \
        'dense model'
    assert sum('median λ·ρ' in line for line in lines) == 4
    assert 'λ at ART step 2 = 0.004' in '\n'.join(lines)
    assert 'clipped to norm 1.0' in lines[-2]
    assert lines[-1].startswith("global magnitude masks at 0.5 on the dense "
                                "model, the config's exclude: ")
    one = {'a': torch.tensor([0.1, 0.2, 0.3, 5.0]), 'b': torch.ones(4)}
    text = mask_lines({'set': one}, 0.5, above=0.7)[0]
    assert text.endswith('1 of 2 layers pruned above 70 %: a (75.0 %)')
    with pytest.raises(KeyError):
        adamw_ratios({'x': torch.nn.Parameter(torch.ones(2))}, opt, 0.5)
