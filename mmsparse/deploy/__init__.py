"""mmsparse.deploy: ONNX export wrappers and the onnxruntime equality check.

``onnx`` and ``onnxruntime`` are optional (``pip install -e .[deploy]``);
they are imported only by the functions that need them. The sparse-kernel
inference layers live in :mod:`mmsparse.utils.sparse_layers`.
"""
from .onnx_export import (ClassifierLogits, UnsupportedExportError,
                          VPPFirstFrame, VPPStreamStep, check_exportable,
                          export_model, export_onnx, onnx_max_abs_diff,
                          run_onnx)
from .slim_fold import FOLD_SIDES, fold_slim_indices

__all__ = [
    'ClassifierLogits', 'FOLD_SIDES', 'UnsupportedExportError',
    'VPPFirstFrame', 'VPPStreamStep', 'check_exportable', 'export_model',
    'export_onnx', 'fold_slim_indices', 'onnx_max_abs_diff', 'run_onnx'
]
