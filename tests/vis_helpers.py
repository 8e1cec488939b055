"""Helpers shared by the VIS tests (importable as ``vis_helpers``)."""
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(ROOT, 'configs', 'toy', 'mask2former_vit_toy-ytvis21.py')


def toy_data_options(data_root: str):
    """``--cfg-options`` pointing the toy configs at another data root."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
    ]
