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


def empty_heldout_root(root):
    """``root`` (a ``pathlib.Path``) made a data root whose held-out
    annotation file exists but is empty (for the experiment scripts' tests
    that stub the held-out ground truth); returns ``root``."""
    (root / 'annotations').mkdir(parents=True)
    (root / 'annotations' / 'youtube_vis_2021_heldout.json').write_text('{}')
    return root


def synthetic_video_records(quality: float, seed: int, num_videos: int = 40):
    """``YTVISVideoRecords`` of a model that finds each instance with
    probability ``quality`` (for the experiment scripts' report tests)."""
    import numpy as np

    from mmsparse.evaluation.functional.ytvis_ap import IOU_THRS
    from mmsparse.evaluation.functional.ytvis_bootstrap import \
        YTVISVideoRecords
    rng = np.random.default_rng(seed)
    num_pos = rng.integers(0, 3, (num_videos, 3))
    video, cat, score, tp = [], [], [], []
    for v in range(num_videos):
        for k in range(3):
            for _ in range(num_pos[v, k] + 1):
                hit = rng.random() < quality
                video.append(v)
                cat.append(k)
                score.append(rng.random() * (1 + hit))
                # a hit is a true positive up to a random IoU threshold
                tp.append(np.arange(len(IOU_THRS)) <
                          (rng.integers(3, 11) if hit else 0))
    tp = np.array(tp).T
    return YTVISVideoRecords(list(range(1, num_videos + 1)), [1, 2, 3],
                             num_pos, video, cat, score, tp, ~tp)
