"""ONNX export of mmsparse models and the onnxruntime equality check.

What exports (fp32, static shapes, opset 17 by default):

* a classifier (mmpretrain ``ImageClassifier`` with a dense
  ``VisionTransformer`` or a P3B ``SlimVisionTransformer``) through
  :class:`ClassifierLogits`: image in, logits out;
* a backbone (``VisionTransformer``, ``SlimVisionTransformer``,
  ``ViTPyramid``, ``SlimViTPyramid``): image in, its output tuple out;
* a ``VPPBackbone`` for streaming: :class:`VPPFirstFrame` (the first frame
  of a video, dense: features and the prior for the next frame out) and
  :class:`VPPStreamStep` (one frame and the previous frame's prior in,
  the features and the next prior out). The keep counts are fixed per
  stage, so every shape is static.

:func:`check_exportable` refuses, with one line naming the layer and what is
supported, the layers that have no ONNX counterpart here: the sparse-kernel
layers of :mod:`mmsparse.utils.sparse_layers` (export the masked dense
model instead) and a bare ``VPPBackbone`` (its prior is state between
calls: use the streaming wrappers). :func:`export_model` picks the wrapper
and example inputs for a built model and checks the file in onnxruntime.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .slim_fold import fold_slim_indices

#: Type name -> why it does not export.
UNSUPPORTED = {
    'SparseLinear': 'a sparse-kernel layer (sparse tensors have no ONNX '
    'operator); export the masked dense model (load_sparse_model(..., '
    'sparse_kernels=False))',
    'SparseConv2d': 'a sparse-kernel layer (sparse tensors have no ONNX '
    'operator); export the masked dense model (load_sparse_model(..., '
    'sparse_kernels=False))',
    'VPPBackbone': 'its prior is state between frames; export it with '
    'VPPFirstFrame / VPPStreamStep (what export_model and '
    'pytorch2onnx.py --part backbone do)',
}
SUPPORTED = ('ImageClassifier (VisionTransformer / SlimVisionTransformer), '
             'VisionTransformer, SlimVisionTransformer, ViTPyramid, '
             'SlimViTPyramid, P3BViTPyramid, VPPBackbone via VPPFirstFrame / '
             'VPPStreamStep')
PRIOR_INPUTS = ('prior_key', 'prior_value', 'prior_valid')


class UnsupportedExportError(ValueError):
    """A model or input the ONNX export does not support (one line)."""


def check_exportable(model: nn.Module,
                     allow: Sequence[str] = ()) -> None:
    """Refuse a model with a layer that has no ONNX operator here.

    Args:
        model (nn.Module): The module to export.
        allow (Sequence[str]): Type names to let through (the streaming
            wrappers allow their own ``VPPBackbone``). Defaults to ().

    Raises:
        UnsupportedExportError: Naming the first unsupported layer, why, and
        what is supported.
    """
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind in UNSUPPORTED and kind not in allow:
            raise UnsupportedExportError(
                f'cannot export layer {name or "<root>"!r} ({kind}): '
                f'{UNSUPPORTED[kind]}; supported: {SUPPORTED}')


class ClassifierLogits(nn.Module):
    """An mmpretrain classifier as ``image -> logits`` (``mode='tensor'``).

    Args:
        classifier (nn.Module): The classifier (``ImageClassifier``).
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(x, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out


def _vpp_parts(vpp: nn.Module, owner: str) -> None:
    if type(vpp).__name__ != 'VPPBackbone' or not hasattr(
            vpp, 'forward_stream'):
        raise UnsupportedExportError(
            f'{owner}: expects a VPPBackbone (with forward_stream), got '
            f'{type(vpp).__name__}')
    if vpp.pruner.dense:
        raise UnsupportedExportError(
            f'{owner}: the VPPBackbone is dense (keep_ratio 1.0); export its '
            'wrapped backbone instead')


def _prior_outputs(vpp: nn.Module, prior, num_tokens: int
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    valid = prior.valid
    if valid is None:
        valid = torch.ones(prior.key.shape[0], num_tokens, dtype=torch.bool,
                           device=prior.key.device)
    return prior.key, prior.value, valid


class VPPFirstFrame(nn.Module):
    """First frame of a video for a streaming ``VPPBackbone`` export.

    ``frame -> (*features, prior_key, prior_value, prior_valid)``: the frame
    runs dense and leaves the prior of the next frame (``prior_valid`` all
    True).

    Args:
        vpp (nn.Module): A ``VPPBackbone`` in eval mode.
    """

    def __init__(self, vpp: nn.Module) -> None:
        super().__init__()
        _vpp_parts(vpp, type(self).__name__)
        self.vpp = vpp

    def forward(self, frame: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        feats, prior = self.vpp.forward_stream(frame, None)
        n = prior.key.shape[1]
        return (*feats, *_prior_outputs(self.vpp, prior, n))


class VPPStreamStep(nn.Module):
    """One pruned frame of a streaming ``VPPBackbone`` export.

    ``(frame, prior_key, prior_value, prior_valid) -> (*features,
    prior_key, prior_value, prior_valid)``: the frame is pruned with the
    previous frame's prior and leaves the next one. Shapes: frame (1, 3, H,
    W); keys and values (1, N, C) with N the patch grid; valid (1, N) bool.

    Args:
        vpp (nn.Module): A ``VPPBackbone`` in eval mode.
    """

    def __init__(self, vpp: nn.Module) -> None:
        super().__init__()
        _vpp_parts(vpp, type(self).__name__)
        self.vpp = vpp

    def forward(self, frame: torch.Tensor,
                prior_key: Optional[torch.Tensor] = None,
                prior_value: Optional[torch.Tensor] = None,
                prior_valid: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, ...]:
        given = dict(prior_key=prior_key, prior_value=prior_value,
                     prior_valid=prior_valid)
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise UnsupportedExportError(
                f'VPPStreamStep: input {missing[0]!r} is missing; the '
                'streaming VPP graph takes (frame, ' + ', '.join(PRIOR_INPUTS)
                + ') from the previous frame (VPPFirstFrame for the first '
                'one)')
        from mmsparse.vpp import FramePrior
        prior = FramePrior(prior_key, prior_value, prior_valid)
        feats, nxt = self.vpp.forward_stream(frame, prior)
        return (*feats, *_prior_outputs(self.vpp, nxt, prior_key.shape[1]))


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def export_onnx(module: nn.Module,
                args: Tuple[torch.Tensor, ...],
                path: str,
                input_names: Sequence[str],
                output_names: Optional[Sequence[str]] = None,
                opset: int = 17,
                allow: Sequence[str] = ()) -> str:
    """Export ``module(*args)`` to ONNX with static shapes.

    Constants are not folded into the file (folding would store, e.g.,
    index tensors expanded to the batch shape): the file holds the
    parameters, and onnxruntime folds constants when it loads the graph.

    Args:
        module (nn.Module): What to export (put in eval mode here).
        args (tuple[Tensor]): Example inputs (their shapes are fixed).
        path (str): The ``.onnx`` file.
        input_names (Sequence[str]): One name per input.
        output_names (Sequence[str], optional): One name per output.
            Defaults to None (``output_0``, ...).
        opset (int): ONNX opset. Defaults to 17.
        allow (Sequence[str]): See :func:`check_exportable`.

    Returns:
        str: ``path``.

    Raises:
        UnsupportedExportError: An unsupported layer, or an operator the
        exporter cannot translate (one line naming it).
    """
    check_exportable(module, allow)
    if len(input_names) != len(args):
        raise ValueError(f'export_onnx: {len(args)} inputs but '
                         f'{len(input_names)} input_names')
    module.eval()
    with torch.no_grad():
        outs = module(*args)
    n_out = len(outs) if isinstance(outs, (tuple, list)) else 1
    if output_names is None:
        output_names = [f'output_{i}' for i in range(n_out)]
    import warnings
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter('ignore')
            torch.onnx.export(module, args, path,
                              input_names=list(input_names),
                              output_names=list(output_names),
                              opset_version=opset,
                              do_constant_folding=False, dynamo=False)
    except UnsupportedExportError:
        raise
    except Exception as err:  # exporter errors are multi-line
        raise UnsupportedExportError(
            f'ONNX export of {type(module).__name__} failed: '
            f'{_first_line(err)}; supported: {SUPPORTED}') from None
    return path


def run_onnx(path: str, inputs: Dict[str, torch.Tensor],
             threads: Optional[int] = None):
    """Run an ONNX file in onnxruntime (CPU) once.

    Args:
        path (str): The ``.onnx`` file.
        inputs (dict): Input name to tensor.
        threads (int, optional): Intra-op threads. Defaults to None (the
            onnxruntime default).

    Returns:
        tuple: ``(session, feeds, outputs)`` (numpy outputs).
    """
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    session = ort.InferenceSession(path, opts,
                                   providers=['CPUExecutionProvider'])
    feeds = {k: v.detach().cpu().numpy() for k, v in inputs.items()}
    return session, feeds, session.run(None, feeds)


def onnx_max_abs_diff(path: str, module: nn.Module,
                      args: Tuple[torch.Tensor, ...],
                      input_names: Sequence[str],
                      threads: Optional[int] = None) -> Tuple[float, List]:
    """Largest absolute difference between onnxruntime and PyTorch.

    Args:
        path (str): The exported ``.onnx`` file.
        module (nn.Module): The PyTorch module it came from.
        args (tuple[Tensor]): The inputs (same for both).
        input_names (Sequence[str]): Names of the inputs in the graph.
        threads (int, optional): onnxruntime intra-op threads.
            Defaults to None.

    Returns:
        tuple: the max abs difference over all floating outputs and the
        per-output differences (boolean / integer outputs: the number of
        entries that differ).
    """
    import numpy as np
    with torch.no_grad():
        ref = module(*args)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    _, _, outs = run_onnx(path, dict(zip(input_names, args)), threads)
    if len(outs) != len(ref):
        raise ValueError(f'{path}: {len(outs)} outputs in onnxruntime, '
                         f'{len(ref)} in PyTorch')
    diffs, worst = [], 0.0
    for a, b in zip(ref, outs):
        a = a.detach().cpu().numpy()
        if a.shape != b.shape:
            raise ValueError(f'{path}: output shape {b.shape} in onnxruntime '
                             f'against {a.shape} in PyTorch')
        if np.issubdtype(a.dtype, np.floating):
            d = float(np.abs(a.astype(np.float64) - b).max()) if a.size \
                else 0.0
            worst = max(worst, d)
        else:
            d = int((a != b).sum())
        diffs.append(d)
    return worst, diffs


def _is_vpp(module: nn.Module) -> bool:
    return type(module).__name__ == 'VPPBackbone'


def export_model(model: nn.Module,
                 out: str,
                 shape: Tuple[int, int],
                 part: str = 'model',
                 opset: int = 17,
                 check: bool = True,
                 threads: Optional[int] = None,
                 seed: int = 0,
                 fold_slim: Sequence[str] = ()) -> Dict[str, object]:
    """Export a built model (or its backbone) and compare in onnxruntime.

    Args:
        model (nn.Module): A classifier (``ImageClassifier``), a backbone,
            or a model with a ``backbone`` attribute.
        out (str): The ``.onnx`` file. A ``VPPBackbone`` writes two files:
            ``out`` (the pruned streaming step) and ``<out stem>_first.onnx``
            (the dense first frame).
        shape (tuple[int, int]): Input height and width.
        part (str): 'model' (a classifier: image -> logits) or 'backbone'
            (``model.backbone``, or ``model`` itself when it has no
            ``backbone``). Defaults to 'model'.
        opset (int): ONNX opset. Defaults to 17.
        check (bool): Run onnxruntime and measure the difference.
            Defaults to True.
        threads (int, optional): onnxruntime intra-op threads for the
            check. Defaults to None.
        seed (int): Seed of the random example inputs. Defaults to 0.
        fold_slim (Sequence[str]): Export P3B slim blocks with their kept
            indices folded into the weights
            (:func:`~mmsparse.deploy.slim_fold.fold_slim_indices`: 'in',
            'out'); the check compares with the unfolded model. Defaults
            to () (no fold).

    Returns:
        dict: ``files`` (the written paths, in run order), ``inputs``
        (name -> shape per file), ``max_abs_diff`` (over all files; None
        without ``check``) and ``diffs`` (per file, per output).
    """
    if part not in ('model', 'backbone'):
        raise ValueError(f"export_model: part must be 'model' or "
                         f"'backbone', got {part!r}")
    model.eval()
    target = model
    if part == 'backbone' and not _is_vpp(model) and isinstance(
            getattr(model, 'backbone', None), nn.Module):
        target = model.backbone
    gen = torch.Generator().manual_seed(seed)
    H, W = int(shape[0]), int(shape[1])
    jobs = []
    if _is_vpp(target):
        frames = torch.randn(2, 1, 3, H, W, generator=gen)
        first, step = VPPFirstFrame(target).eval(), VPPStreamStep(target)
        step.eval()
        with torch.no_grad():
            prior = first(frames[0])[-3:]
        n_feat = len(first(frames[0])) - 3
        feats = [f'feat_{i}' for i in range(n_feat)]
        nxt = ['next_' + k for k in PRIOR_INPUTS]
        first_path = (out[:-5] if out.endswith('.onnx') else out) + \
            '_first.onnx'
        allow = ('VPPBackbone', )
        jobs.append((first, (frames[0], ), first_path, ['frame'],
                     feats + nxt, allow))
        jobs.append((step, (frames[1], *prior), out,
                     ['frame'] + list(PRIOR_INPUTS), feats + nxt, allow))
    else:
        if part == 'model':
            if not (hasattr(target, 'backbone') and hasattr(target, 'head')):
                raise UnsupportedExportError(
                    f"export_model: part='model' needs a classifier with a "
                    f'backbone and a head, got {type(target).__name__}; '
                    f'supported: {SUPPORTED}')
            target = ClassifierLogits(target).eval()
            names = ['logits']
        else:
            names = None
        x = torch.randn(1, 3, H, W, generator=gen)
        jobs.append((target, (x, ), out, ['image'], names, ()))
    result = dict(files=[], inputs={}, diffs={}, max_abs_diff=None)
    worst = 0.0
    for module, args, path, in_names, out_names, allow in jobs:
        exported = fold_slim_indices(module, fold_slim).eval() \
            if fold_slim else module
        export_onnx(exported, args, path, in_names, out_names, opset, allow)
        result['files'].append(path)
        result['inputs'][path] = {n: list(a.shape)
                                  for n, a in zip(in_names, args)}
        if check:
            d, per = onnx_max_abs_diff(path, module, args, in_names,
                                       threads)
            result['diffs'][path] = per
            worst = max(worst, d)
    if check:
        result['max_abs_diff'] = worst
    return result
