"""Compressed sparse checkpoints: exact round trip, size scales with nnz."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from mmsparse.art import global_magnitude_masks, prunable_weights
from mmsparse.utils.sparse_checkpoint import (decode_tensor, encode_tensor,
                                              load_sparse_checkpoint,
                                              save_sparse_checkpoint)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3), nn.Flatten(), nn.LazyLinear(10))


@pytest.mark.parametrize('density', [1.0, 0.6, 0.2, 0.02, 0.0])
def test_encode_decode_exact(density):
    g = torch.Generator().manual_seed(1)
    t = torch.randn(33, 70, generator=g)
    t[torch.rand(t.shape, generator=g) >= density] = 0
    enc = encode_tensor(t)
    dec = decode_tensor(enc)
    assert dec.dtype == t.dtype and torch.equal(dec, t)
    ints = torch.arange(10)
    assert encode_tensor(ints) is not None and torch.equal(
        decode_tensor(encode_tensor(ints)), ints)


def test_checkpoint_size_scales_with_nonzeros(tmp_path):
    model = _net()
    model(torch.zeros(1, 3, 12, 12))
    sizes = {}
    for sparsity in (0.9, 0.98):
        weights = prunable_weights(model)
        masks = global_magnitude_masks(weights, sparsity)
        with torch.no_grad():
            for n, w in weights.items():
                w.mul_(masks[n])
        dense_path = osp.join(tmp_path, f'dense_{sparsity}.pth')
        sparse_path = osp.join(tmp_path, f'sparse_{sparsity}.pth')
        ckpt = dict(meta=dict(epoch=1), state_dict=model.state_dict(),
                    optimizer=dict(dummy=torch.zeros(1000)))
        torch.save(dict(meta=ckpt['meta'], state_dict=ckpt['state_dict']),
                   dense_path)
        save_sparse_checkpoint(ckpt, sparse_path)
        sizes[sparsity] = osp.getsize(sparse_path) / osp.getsize(dense_path)
        loaded = load_sparse_checkpoint(sparse_path)
        assert loaded['meta'] == dict(epoch=1) and 'optimizer' not in loaded
        fresh = _net()
        fresh(torch.zeros(1, 3, 12, 12))
        fresh.load_state_dict(loaded['state_dict'], strict=True)
        for (k, a), b in zip(model.state_dict().items(),
                             fresh.state_dict().values()):
            assert torch.equal(a, b), k
    # delta (uint8 gaps) + fp32: ~5 bytes per non-zero against 4 per weight
    assert sizes[0.98] < 0.06
    assert sizes[0.98] < sizes[0.9] / 2.5


def test_malformed_sparse_files(tmp_path):
    path = osp.join(tmp_path, 'plain.pth')
    torch.save(dict(state_dict={}), path)
    with pytest.raises(ValueError, match='not a sparse checkpoint'):
        load_sparse_checkpoint(path)
    t = torch.zeros(10000)
    t[::1000] = 1.0  # gaps of 1000: coo (2 bytes) beats delta (4 bytes)
    enc = encode_tensor(t)
    assert enc['__mmsparse_sparse__'] == 'coo'
    enc['indices'] = enc['indices'] + 10000
    with pytest.raises(ValueError, match='out of range'):
        decode_tensor(enc)
    enc['__mmsparse_sparse__'] = 'csr'
    with pytest.raises(ValueError, match='unknown encoding'):
        decode_tensor(enc)
    bitmap = encode_tensor(torch.tensor([0.0, 1.0] * 100))
    assert bitmap['__mmsparse_sparse__'] == 'bitmap'
    bitmap['values'] = bitmap['values'][:-1]
    with pytest.raises(ValueError, match='bitmap and values disagree'):
        decode_tensor(bitmap)


def test_delta_encoding_exact():
    g = torch.Generator().manual_seed(2)
    t = torch.zeros(200_000)
    idx = torch.randperm(t.numel(), generator=g)[:4000]
    t[idx] = torch.randn(4000, generator=g)
    t[[0, 255, 256, 511, 199_999]] = 1.0  # gaps at the uint8 limits
    t[idx[:50]] = -0.0  # pruned by w.mul_(mask): stored as zeros
    enc = encode_tensor(t)
    assert enc['__mmsparse_sparse__'] == 'delta'
    assert enc['values'].numel() == 4000 - 50 + 5
    dec = decode_tensor(enc)
    assert torch.equal(dec, t)
    nonzero = t != 0
    assert torch.equal(dec[nonzero].view(torch.int32),
                       t[nonzero].view(torch.int32))
    enc['gaps'] = enc['gaps'][:-1]
    with pytest.raises(ValueError, match='not matching the values'):
        decode_tensor(enc)
    # a long run of zeros: escapes, still exact
    t = torch.zeros(100_000, dtype=torch.float64)
    t[[3, 70_000]] = 2.0
    assert torch.equal(decode_tensor(encode_tensor(t)), t)
    # gaps of ~1000 in a large tensor: 16-bit codes beat int32 coo
    t = torch.zeros(1_000_000)
    t[7::997] = torch.randn(len(range(7, 1_000_000, 997)), generator=g)
    t[999_999] = 1.0
    enc = encode_tensor(t)
    assert enc['__mmsparse_sparse__'] == 'delta' and enc['bits'] == 16
    assert torch.equal(decode_tensor(enc), t)


def test_resnet32_w2_at_98_percent_within_4_percent(tmp_path):
    """ResNet-32 with doubled widths (CIFAR recipe of the paper): the sparse
    file at 98 % is <= 4 % of the dense state dict and reloads bit-exactly.
    Every layer at 98 % (at initialisation one global threshold would empty
    the large layers, which a trained network does not)."""
    from mmsparse.models.backbones import CifarResNet
    torch.manual_seed(0)
    model = nn.Sequential(
        CifarResNet(depth=32, widths=(32, 64, 128)), nn.Flatten(),
        nn.Linear(128, 10))
    with torch.no_grad():
        for n, w in prunable_weights(model).items():
            mask = global_magnitude_masks({n: w}, 0.98)[n]
            w.mul_(mask)  # leaves -0.0: stored as zeros all the same
    dense_path = osp.join(tmp_path, 'dense.pth')
    sparse_path = osp.join(tmp_path, 'sparse.pth')
    torch.save(dict(state_dict=model.state_dict()), dense_path)
    save_sparse_checkpoint(dict(state_dict=model.state_dict()), sparse_path)
    ratio = osp.getsize(sparse_path) / osp.getsize(dense_path)
    assert ratio <= 0.04, ratio
    loaded = load_sparse_checkpoint(sparse_path)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_sparse_scheme_creates_tensors_on_the_map_location(tmp_path):
    """sparse:// decodes on the device the values were loaded to: with
    map_location='meta' (a stand-in for CUDA on a CPU-only machine) every
    tensor is on meta; a CPU tensor meeting a meta one would raise."""
    from mmengine.runner import CheckpointLoader

    import mmsparse.engine.sparse_checkpoint_loader  # noqa: F401
    model = _net()
    model(torch.zeros(1, 3, 12, 12))
    weights = prunable_weights(model)
    masks = global_magnitude_masks(weights, 0.95)
    with torch.no_grad():
        for n, w in weights.items():
            w.masked_fill_(~masks[n], 0)
    path = osp.join(tmp_path, 'sparse.pth')
    out = save_sparse_checkpoint(dict(state_dict=model.state_dict()), path)
    kinds = {v['__mmsparse_sparse__'] for v in out['state_dict'].values()
             if isinstance(v, dict)}
    assert kinds  # some tensors are stored sparse
    loaded = CheckpointLoader.load_checkpoint(f'sparse://{path}',
                                              map_location='meta')
    for key, value in model.state_dict().items():
        got = loaded['state_dict'][key]
        assert got.device.type == 'meta', key
        assert got.shape == value.shape and got.dtype == value.dtype, key
