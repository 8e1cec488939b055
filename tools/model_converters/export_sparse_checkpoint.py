"""Export a pruned checkpoint as a compressed sparse checkpoint.

The output stores every floating tensor in the smallest of dense / bitmap /
coo / delta encodings (see ``mmsparse/utils/sparse_checkpoint.py``), so its
size scales with the non-zeros (ResNet-32-w2 at 98 %: <= 4 % of the dense
state dict, values in their dtype, bit-exact); optimizer and pruning state are dropped. It loads
back into the dense architecture with ``load_from='sparse://OUT'`` or
``mmsparse.utils.sparse_checkpoint.load_sparse_checkpoint``.

Usage:
    python tools/model_converters/export_sparse_checkpoint.py IN.pth OUT.pth \
        [--config CONFIG] [--half]

With ``--config`` the model is built from the config, the exported file is
loaded into it with ``strict=True`` and every tensor is compared with the
input checkpoint.
"""
import argparse
import io
import os.path as osp

import torch


def parse_args():
    parser = argparse.ArgumentParser(
        description='Export a compressed sparse checkpoint')
    parser.add_argument('checkpoint', help='input checkpoint (.pth)')
    parser.add_argument('out', help='output sparse checkpoint (.pth)')
    parser.add_argument(
        '--config',
        help='config of the model: verify a strict load into the dense '
        'architecture')
    parser.add_argument(
        '--half',
        action='store_true',
        help='store floating values as float16 (lossy)')
    return parser.parse_args()


def _nbytes(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def verify(config: str, sparse_path: str, state_dict: dict) -> None:
    """Build the model of ``config``, load the sparse file strictly and
    compare it with ``state_dict``."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    import mmsparse  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    load_checkpoint(
        model, 'sparse://' + sparse_path, map_location='cpu', strict=True)
    loaded = model.state_dict()
    for key, value in state_dict.items():
        if torch.is_tensor(value) and not torch.equal(
                loaded[key].to(value.dtype), value):
            raise RuntimeError(f'mismatch after the round trip: {key}')
    print(f'verified: strict load into {type(model).__name__} and all '
          f'{len(state_dict)} tensors equal')


def main():
    args = parse_args()
    from mmsparse.utils.sparse_checkpoint import save_sparse_checkpoint
    ckpt = torch.load(args.checkpoint, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{args.checkpoint}: not a checkpoint dict')
    state_dict = ckpt.get('state_dict', ckpt)
    state_dict = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state_dict.items()
    }
    dense = dict(meta=ckpt.get('meta', {}), state_dict=state_dict)
    save_sparse_checkpoint(
        dense,
        args.out,
        value_dtype=torch.float16 if args.half else None)
    floats = [v for v in state_dict.values()
              if torch.is_tensor(v) and v.is_floating_point()]
    numel = sum(v.numel() for v in floats)
    zeros = sum(int((v == 0).sum()) for v in floats)
    dense_size, sparse_size = _nbytes(dense), osp.getsize(args.out)
    print(f'zeros: {zeros}/{numel} floating values '
          f'({100 * zeros / max(numel, 1):.2f}%)')
    print(f'size: dense state dict {dense_size / 1024:.1f} KiB -> sparse '
          f'{sparse_size / 1024:.1f} KiB (ratio '
          f'{sparse_size / dense_size:.4f})')
    if args.config:
        verify(args.config, args.out, state_dict)


if __name__ == '__main__':
    main()
