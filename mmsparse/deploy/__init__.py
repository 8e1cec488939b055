"""mmsparse.deploy: ONNX export wrappers and the onnxruntime equality check.

``onnx`` and ``onnxruntime`` are optional (``pip install -e .[deploy]``);
they are imported only by the functions that need them. The sparse-kernel
inference layers live in :mod:`mmsparse.utils.sparse_layers`.
"""
from .onnx_export import (ClassifierLogits, UnsupportedExportError,
                          VPPFirstFrame, VPPStreamStep, check_exportable,
                          export_model, export_onnx, onnx_max_abs_diff,
                          run_onnx)

__all__ = [
    'ClassifierLogits', 'UnsupportedExportError', 'VPPFirstFrame',
    'VPPStreamStep', 'check_exportable', 'export_model', 'export_onnx',
    'onnx_max_abs_diff', 'run_onnx'
]
