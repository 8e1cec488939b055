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
    # coo int32 + fp32: ~8 bytes per non-zero against 4 per weight
    assert sizes[0.98] < 0.06
    assert sizes[0.98] < sizes[0.9] / 2.5


def test_malformed_sparse_files(tmp_path):
    path = osp.join(tmp_path, 'plain.pth')
    torch.save(dict(state_dict={}), path)
    with pytest.raises(ValueError, match='not a sparse checkpoint'):
        load_sparse_checkpoint(path)
    t = torch.zeros(1000)
    t[::100] = 1.0
    enc = encode_tensor(t)
    assert enc['__mmsparse_sparse__'] == 'coo'
    enc['indices'] = enc['indices'] + 1000
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
