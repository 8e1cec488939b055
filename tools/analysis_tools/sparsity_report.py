"""Per-layer and global sparsity of a checkpoint.

Usage:
    python tools/analysis_tools/sparsity_report.py CKPT [--config CONFIG]
        [--out report.json]

``CKPT`` may be a regular or a sparse (``export_sparse_checkpoint.py``)
checkpoint. The prunable weights are those ART prunes (Conv/Linear weights
and packed attention projections): exactly, via the model, with ``--config``;
without it, every floating tensor named ``*weight`` with at least 2
dimensions. Writes a markdown table to stdout and optionally JSON.
"""
import argparse
import json

import torch


def parse_args():
    parser = argparse.ArgumentParser(description='Sparsity report')
    parser.add_argument('checkpoint', help='checkpoint (.pth), dense or sparse')
    parser.add_argument('--config', help='config to identify prunable layers')
    parser.add_argument('--out', help='write the report as JSON')
    return parser.parse_args()


def load_state_dict(path: str) -> dict:
    from mmsparse.utils.sparse_checkpoint import (densify_state_dict,
                                                  is_sparse_checkpoint)
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if is_sparse_checkpoint(ckpt):
        return dict(densify_state_dict(ckpt['state_dict']))
    state_dict = ckpt.get('state_dict', ckpt)
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in state_dict.items()}


def prunable_names(state_dict: dict, config=None) -> list:
    if config is None:
        return [
            k for k, v in state_dict.items()
            if torch.is_tensor(v) and v.is_floating_point() and v.dim() >= 2
            and k.endswith('weight')
        ]
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmsparse  # noqa: F401
    from mmsparse.art import prunable_weights
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    names = list(prunable_weights(model))
    missing = [n for n in names if n not in state_dict]
    if missing:
        raise ValueError(f'the checkpoint lacks prunable weights of the '
                         f'config, e.g. {missing[:3]}')
    return names


def report(state_dict: dict, names: list) -> dict:
    layers = []
    zeros = total = 0
    for name in names:
        value = state_dict[name]
        z = int((value == 0).sum())
        layers.append(
            dict(
                name=name,
                shape=list(value.shape),
                numel=value.numel(),
                zeros=z,
                sparsity=z / max(value.numel(), 1)))
        zeros += z
        total += value.numel()
    return dict(
        layers=layers,
        total=total,
        zeros=zeros,
        nonzeros=total - zeros,
        sparsity=zeros / max(total, 1))


def main():
    args = parse_args()
    state_dict = load_state_dict(args.checkpoint)
    result = report(state_dict, prunable_names(state_dict, args.config))
    print('| layer | shape | weights | non-zero | sparsity |')
    print('|---|---|---:|---:|---:|')
    for layer in result['layers']:
        print(f"| {layer['name']} | {'x'.join(map(str, layer['shape']))} | "
              f"{layer['numel']} | {layer['numel'] - layer['zeros']} | "
              f"{100 * layer['sparsity']:.2f}% |")
    print(f"| **global** | | {result['total']} | {result['nonzeros']} | "
          f"**{100 * result['sparsity']:.3f}%** |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
