"""``sparse://`` checkpoints: compressed files load like dense ones.

``load_from = 'sparse://work_dirs/x/model_sparse.pth'`` (or
``mmengine.runner.load_checkpoint(model, 'sparse://...')``) reads a file
written by ``tools/model_converters/export_sparse_checkpoint.py`` and returns
the dense checkpoint, which then loads strictly into the dense architecture.
"""
from mmengine.runner import CheckpointLoader

from mmsparse.utils.sparse_checkpoint import load_sparse_checkpoint

SPARSE_PREFIX = 'sparse://'


@CheckpointLoader.register_scheme(prefixes=SPARSE_PREFIX, force=True)
def load_from_sparse(filename: str, map_location=None) -> dict:
    """Load a compressed sparse checkpoint as a dense one.

    Args:
        filename (str): ``sparse://<path>``.
        map_location (str, optional): As in ``torch.load``.

    Returns:
        dict: ``{'meta': ..., 'state_dict': <dense tensors>}``.
    """
    return load_sparse_checkpoint(filename[len(SPARSE_PREFIX):],
                                  map_location=map_location or 'cpu')
