"""Sparse-kernel inference layers for unstructured (ART) sparsity.

A model pruned to 98 % by ART still runs every multiply of its dense
weights. :func:`sparsify_model` swaps its ``nn.Linear`` layers (and, when
asked, its ``nn.Conv2d`` layers) that are at least ``min_sparsity`` sparse
for :class:`SparseLinear` / :class:`SparseConv2d`, whose weights are stored
as a sparse matrix and multiplied by a sparse kernel:

* ``SparseLinear``: ``y = x W^T + b`` computed as ``(W x^T)^T`` with ``W``
  (out, in) in CSR: one sparse-dense product ``W @ X`` per call, where the
  tokens / samples of the batch are the columns of ``X``;
* ``SparseConv2d``: im2col (``F.unfold``) then the same product with the
  weight as a (out, in·kh·kw) CSR matrix, so a convolution is one sparse
  matrix times the patch matrix of the whole batch.

Kernels (``kernel=``; see :data:`KERNELS`):

* ``'csr'``: ``torch.sparse_csr`` with int32 indices, ``torch.addmm``
  (MKL's sparse BLAS in the official CPU wheels, multi-threaded);
* ``'csr_keep_layout'``: the same CSR matrix and MKL product, but a linear
  layer never transposes its input by a copy: an input in rows (the usual
  layout) is multiplied in MKL's column-major order and the output comes
  out in rows; an input that is the transposed view a previous layer
  returned takes the ``'csr'`` path (see :class:`SparseLinear`);
* ``'csr_contiguous_rows'``: ``'csr'``, except in the layers that must
  return contiguous rows (``contiguous_output``, e.g. ``qkv``): there an
  input in rows is multiplied as with ``'csr_keep_layout'`` instead of
  transposing the input and then the output;
* ``'coo'``: ``torch.sparse_coo`` with ``torch.sparse.mm``;
* ``'scipy'``: ``scipy.sparse.csr_matrix @ ndarray`` (single-threaded).

Convolutions run the same product for every CSR kernel.

The layers are inference-only (no gradient reaches the weights) and plain
PyTorch; they save and load the *dense* ``weight`` key, so the state dict of
a sparsified model is that of the dense model and a
:mod:`~mmsparse.utils.sparse_checkpoint` file loads into either.

:func:`load_sparse_model` loads a checkpoint (sparse or dense), checks it
against the model (keys, shapes, and the pruning masks when the checkpoint
carries them) with a one-line error naming the first parameter that does
not match, and switches the sparse kernels on.
"""
import re
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

KERNELS = ('csr', 'coo', 'scipy', 'csr_keep_layout', 'csr_contiguous_rows')
#: Kernels that store the weight as an MKL-ready CSR matrix (int32 indices).
CSR_KERNELS = ('csr', 'csr_keep_layout', 'csr_contiguous_rows')
#: Checkpoint keys under which the pruning hooks keep their masks.
MASK_STATE_KEYS = ('art_state', 'pruning_state', 'gmp_pruning_state',
                   'oneshot_pruning_state')
#: Linear layers (name patterns) whose output is made contiguous: a ``qkv``
#: output is split into heads for fused attention, which falls back to a
#: slower path on the transposed layout.
CONTIGUOUS_OUTPUTS = (r'(^|\.)qkv$', )
#: Sparsity from which a layer is swapped by default: below it the dense
#: kernel is faster on CPU (``tools/analysis_tools/benchmark_deploy.py``
#: measures the break-even of a whole model).
DEFAULT_MIN_SPARSITY = 0.85
#: Layer kinds swapped by default. Convolutions are supported but opt-in:
#: im2col plus a sparse product is usually slower than the dense (oneDNN)
#: convolution on CPU; measure with the benchmark before switching them on.
DEFAULT_LAYERS = ('linear', )


def _check_kernel(kernel: str, owner: str) -> str:
    if kernel not in KERNELS:
        raise ValueError(f'{owner}: kernel must be one of {KERNELS}, got '
                         f'{kernel!r}')
    return kernel


class _SparseMatrix:
    """A fixed (rows, cols) float matrix in one sparse format, times dense.

    Args:
        dense (Tensor): The 2-D matrix (its zeros are not stored).
        kernel (str): One of :data:`KERNELS`.
    """

    def __init__(self, dense: torch.Tensor, kernel: str) -> None:
        dense = dense.detach()
        self.kernel = _check_kernel(kernel, 'sparse matrix')
        self.shape = tuple(dense.shape)
        self.dtype, self.device = dense.dtype, dense.device
        self.nnz = int(torch.count_nonzero(dense))
        if kernel in CSR_KERNELS:
            with warnings.catch_warnings():  # 'CSR support is in beta'
                warnings.simplefilter('ignore', UserWarning)
                csr = dense.to_sparse_csr()
            self.mat = torch.sparse_csr_tensor(
                csr.crow_indices().to(torch.int32),
                csr.col_indices().to(torch.int32), csr.values(),
                size=self.shape)
        elif kernel == 'coo':
            self.mat = dense.to_sparse_coo().coalesce()
        else:
            import scipy.sparse
            self.mat = scipy.sparse.csr_matrix(dense.cpu().numpy())

    def mm(self, x: torch.Tensor) -> torch.Tensor:
        """``self @ x`` for a dense (cols, n) ``x``; (rows, n)."""
        if self.kernel in CSR_KERNELS:
            # addmm with beta=0 writes the product into a fresh tensor;
            # torch.mm adds it to a zero-filled result (one more pass)
            out = x.new_empty(self.shape[0], x.shape[1])
            return torch.addmm(out, self.mat, x, beta=0, out=out)
        if self.kernel == 'coo':
            return torch.sparse.mm(self.mat, x)
        out = self.mat @ x.detach().cpu().contiguous().numpy()
        return torch.from_numpy(out).to(x.device)

    def mm_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ self^T`` for a dense (n, cols) ``x``; (n, rows), in rows.

        CSR kernels only. The product is written through the transposed
        view of the (n, rows) result, so MKL runs in column-major order:
        ``x`` is then passed as ``x^T`` in column-major order too, which
        torch copies as it is (rows to rows, no transposition) and the
        result needs no transposition either.
        """
        if self.kernel not in CSR_KERNELS:
            raise ValueError(f'sparse matrix: mm_rows needs a kernel of '
                             f'{CSR_KERNELS}, got {self.kernel!r}')
        if self.shape[0] == 1:  # (n, 1) and (1, n) rows: no order to pick
            return self.mm(x.t().contiguous()).view(x.shape[0], 1)
        out = x.new_empty(x.shape[0], self.shape[0])
        out_t = out.t()
        torch.addmm(out_t, self.mat, x.t(), beta=0, out=out_t)
        return out

    def __deepcopy__(self, memo) -> '_SparseMatrix':
        # sparse CSR tensors cannot be deep-copied; the zeros define the
        # stored pattern, so rebuilding from the dense matrix is exact
        return _SparseMatrix(self.to_dense(), self.kernel)

    def to_dense(self) -> torch.Tensor:
        if self.kernel == 'scipy':
            return torch.from_numpy(self.mat.toarray()).to(self.device)
        return self.mat.to_dense()

    def to(self, device: torch.device) -> '_SparseMatrix':
        if self.kernel != 'scipy':
            self.mat = self.mat.to(device)
        self.device = torch.device(device)
        return self


class _SparseLayer(nn.Module):
    """Weight storage, state-dict and repr shared by the sparse layers."""

    def _set_weight(self, weight: torch.Tensor) -> None:
        self.weight_shape = tuple(weight.shape)
        self._matrix = _SparseMatrix(weight.reshape(weight.shape[0], -1),
                                     self.kernel)

    @property
    def weight(self) -> torch.Tensor:
        """The dense weight (materialised on each access)."""
        return self._matrix.to_dense().view(self.weight_shape)

    @property
    def nnz(self) -> int:
        return self._matrix.nnz

    @property
    def sparsity(self) -> float:
        numel = 1
        for d in self.weight_shape:
            numel *= d
        return 1.0 - self.nnz / max(numel, 1)

    def _apply(self, fn, recurse=True):
        module = super()._apply(fn, recurse)
        probe = fn(torch.zeros(()))
        if probe.device != self._matrix.device:
            self._matrix.to(probe.device)
        return module

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        destination[prefix + 'weight'] = self.weight  # nn.Linear's order
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + 'weight'
        if key in state_dict:
            weight = state_dict[key]
            if tuple(weight.shape) != self.weight_shape:
                error_msgs.append(
                    f'size mismatch for {key}: copying a param with shape '
                    f'{tuple(weight.shape)}, the shape in the current model '
                    f'is {self.weight_shape}')
            else:
                self._set_weight(weight.to(self._matrix.device,
                                           self._matrix.dtype))
        elif strict:
            missing_keys.append(key)
        rest = {k: v for k, v in state_dict.items() if k != key}
        super()._load_from_state_dict(rest, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys,
                                      error_msgs)


class SparseLinear(_SparseLayer):
    """``nn.Linear`` for inference with the weight in a sparse format.

    ``y = x W^T + b``, computed as ``(W X)^T`` with ``X`` the inputs as
    columns, by a sparse-dense product (see :data:`KERNELS`). Equal to the
    dense layer up to float rounding (the sum runs over the non-zeros only).

    The product comes out as (out, n); it is returned as its transposed
    view (n, out), which the next sparse layer takes without a copy (e.g.
    an MLP's second layer after the activation). With
    ``contiguous_output=True`` it is copied to contiguous rows instead, for
    consumers that need them (fused attention after a ``qkv`` layer).
    The inputs are copied to (in, n) rows first unless they already are
    such a transposed view.

    With ``kernel='csr_keep_layout'`` an input that is not such a transposed
    view (an input in rows, e.g. after a layer norm or attention) is not
    transposed: ``x W^T`` is computed with ``x`` and the (n, out) result in
    rows (:meth:`_SparseMatrix.mm_rows`; torch copies ``x`` once, rows to
    rows), and the result is returned in rows, so ``contiguous_output``
    needs no copy. A transposed-view input takes the path above (no input
    copy, transposed-view output). ``kernel='csr_contiguous_rows'`` does the
    same only when ``contiguous_output`` is set, and is ``'csr'``
    otherwise.

    Args:
        weight (Tensor): Dense weight (out_features, in_features).
        bias (Tensor, optional): Bias (out_features). Defaults to None.
        kernel (str): Sparse kernel, one of :data:`KERNELS`.
            Defaults to 'csr'.
        contiguous_output (bool): Return contiguous rows. Defaults to False.
    """

    def __init__(self, weight: torch.Tensor,
                 bias: Optional[torch.Tensor] = None,
                 kernel: str = 'csr',
                 contiguous_output: bool = False) -> None:
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f'SparseLinear: weight must be 2-D (out, in), '
                             f'got shape {tuple(weight.shape)}')
        self.kernel = _check_kernel(kernel, 'SparseLinear')
        self.out_features, self.in_features = weight.shape
        self.contiguous_output = bool(contiguous_output)
        self._set_weight(weight)
        self.bias = None if bias is None else nn.Parameter(
            bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_dense(cls, layer: nn.Linear, kernel: str = 'csr',
                   contiguous_output: bool = False) -> 'SparseLinear':
        """The sparse copy of a dense ``nn.Linear``."""
        return cls(layer.weight, layer.bias, kernel, contiguous_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        rows = x.reshape(-1, self.in_features)
        rows_path = self.kernel == 'csr_keep_layout' or (
            self.kernel == 'csr_contiguous_rows' and self.contiguous_output)
        if rows_path and not rows.t().is_contiguous():
            out = self._matrix.mm_rows(rows)
            if self.bias is not None:
                out.add_(self.bias)
            return out.reshape(*lead, self.out_features)
        # (in, n) columns: free when x is the transposed view this layer
        # returns (e.g. the MLP's second layer after an activation)
        cols = rows.t().contiguous()
        out = self._matrix.mm(cols)
        if self.bias is not None:
            out.add_(self.bias[:, None])
        out = out.t()
        if self.contiguous_output:
            out = out.contiguous()
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, '
                f'bias={self.bias is not None}, kernel={self.kernel!r}, '
                f'sparsity={self.sparsity:.4f}')


class SparseConv2d(_SparseLayer):
    """``nn.Conv2d`` (groups 1, zero padding) for inference with a sparse
    weight: im2col (``F.unfold``) and one sparse-dense product.

    Args:
        conv (nn.Conv2d): The dense convolution (weights copied).
        kernel (str): Sparse kernel, one of :data:`KERNELS`.
            Defaults to 'csr'.
    """

    def __init__(self, conv: nn.Conv2d, kernel: str = 'csr') -> None:
        super().__init__()
        reason = unsupported_conv(conv)
        if reason:
            raise ValueError(f'SparseConv2d: {reason}')
        self.kernel = _check_kernel(kernel, 'SparseConv2d')
        self.in_channels, self.out_channels = conv.in_channels, \
            conv.out_channels
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation
        self._set_weight(conv.weight)
        self.bias = None if conv.bias is None else nn.Parameter(
            conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        kh, kw = self.kernel_size
        oh = (H + 2 * self.padding[0] - self.dilation[0] *
              (kh - 1) - 1) // self.stride[0] + 1
        ow = (W + 2 * self.padding[1] - self.dilation[1] *
              (kw - 1) - 1) // self.stride[1] + 1
        if (kh, kw) == (1, 1) and self.stride == (1, 1) and \
                self.padding == (0, 0):
            cols = x.reshape(B, self.in_channels, H * W)
        else:
            cols = F.unfold(x, self.kernel_size, self.dilation, self.padding,
                            self.stride)
        if B == 1:
            out = self._matrix.mm(cols[0].contiguous()).unsqueeze(0)
        else:
            cols = cols.transpose(0, 1).reshape(cols.shape[1], -1)
            out = self._matrix.mm(cols).view(self.out_channels, B, -1)
            out = out.transpose(0, 1)
        out = out.reshape(B, self.out_channels, oh, ow)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, kernel={self.kernel!r}, '
                f'sparsity={self.sparsity:.4f}')


def unsupported_conv(conv: nn.Conv2d) -> Optional[str]:
    """Why a ``nn.Conv2d`` has no sparse counterpart (None: it has)."""
    if conv.groups != 1:
        return f'groups={conv.groups} (only groups=1 is supported)'
    if conv.padding_mode != 'zeros':
        return (f'padding_mode={conv.padding_mode!r} (only zeros is '
                'supported)')
    if isinstance(conv.padding, str):
        return f'padding={conv.padding!r} (only explicit padding)'
    return None


def weight_sparsity(weight: torch.Tensor) -> float:
    """Fraction of exact zeros of a tensor."""
    return 1.0 - int(torch.count_nonzero(weight)) / max(weight.numel(), 1)


def _swappable(name: str, module: nn.Module, parent: nn.Module
               ) -> Optional[str]:
    """'linear' / 'conv' when ``module`` can be swapped, else None."""
    if isinstance(parent, nn.MultiheadAttention):
        return None  # MHA reads out_proj.weight directly
    if isinstance(module, nn.Linear) and isinstance(
            getattr(module, 'weight', None), torch.Tensor):
        return 'linear'
    if type(module) is nn.Conv2d and unsupported_conv(module) is None:
        return 'conv'
    return None


@torch.no_grad()
def sparsify_model(model: nn.Module,
                   min_sparsity: float = DEFAULT_MIN_SPARSITY,
                   kernel: str = 'csr',
                   layers: Sequence[str] = DEFAULT_LAYERS,
                   exclude: Optional[Sequence[str]] = None,
                   contiguous_outputs: Sequence[str] = CONTIGUOUS_OUTPUTS
                   ) -> List[Dict[str, Any]]:
    """Swap sparse-enough Linear / Conv2d layers for sparse-kernel layers.

    In place; for inference (put the model in ``eval()`` mode: the swapped
    layers have no weight gradient). The zeros of each weight define what
    is stored, so apply the masks before calling this.

    Args:
        model (nn.Module): The model.
        min_sparsity (float): A layer is swapped when at least this
            fraction of its weight is zero, in [0, 1]. Defaults to
            :data:`DEFAULT_MIN_SPARSITY`.
        kernel (str): One of :data:`KERNELS`. Defaults to 'csr'.
        layers (Sequence[str]): Layer kinds to swap: 'linear' (every
            ``nn.Linear`` and subclass) and / or 'conv' (``nn.Conv2d`` with
            groups 1 and zero padding). Defaults to :data:`DEFAULT_LAYERS`.
        exclude (Sequence[str], optional): Regular expressions on module
            names that are never swapped. Defaults to None.
        contiguous_outputs (Sequence[str]): Regular expressions on the names
            of linear layers that return contiguous rows (see
            :class:`SparseLinear`). Defaults to :data:`CONTIGUOUS_OUTPUTS`.

    Returns:
        list[dict]: One entry per swapped layer: ``name``, ``kind``,
        ``shape``, ``sparsity``.
    """
    _check_kernel(kernel, 'sparsify_model')
    if not 0.0 <= float(min_sparsity) <= 1.0:
        raise ValueError(f'sparsify_model: min_sparsity must be in [0, 1], '
                         f'got {min_sparsity!r}')
    bad = set(layers) - {'linear', 'conv'}
    if bad:
        raise ValueError(f'sparsify_model: layers must be among '
                         f"('linear', 'conv'), got {sorted(bad)}")
    patterns = [re.compile(p) for p in (exclude or [])]
    contiguous = [re.compile(p) for p in contiguous_outputs]
    swaps = []
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            name = f'{parent_name}.{child_name}' if parent_name else \
                child_name
            kind = _swappable(name, child, parent)
            if kind not in layers or any(p.search(name) for p in patterns):
                continue
            sparsity = weight_sparsity(child.weight)
            if sparsity < min_sparsity:
                continue
            swaps.append((parent, child_name, name, kind, child, sparsity))
    out = []
    for parent, child_name, name, kind, child, sparsity in swaps:
        if kind == 'linear':
            new = SparseLinear.from_dense(
                child, kernel, any(p.search(name) for p in contiguous))
        else:
            new = SparseConv2d(child, kernel)
        setattr(parent, child_name, new)
        out.append(dict(name=name, kind=kind, shape=tuple(child.weight.shape),
                        sparsity=sparsity))
    return out


def checkpoint_masks(checkpoint: Mapping[str, Any]
                     ) -> Optional['OrderedDict[str, torch.Tensor]']:
    """The pruning masks a checkpoint carries (None when it has none).

    Looks under the state keys of the pruning hooks (:data:`MASK_STATE_KEYS`,
    ``{'masks': ...}``) and a top-level ``masks``; packed masks are unpacked.
    """
    from mmsparse.art.state_io import unpack_masks
    for key in MASK_STATE_KEYS + ('masks', ):
        state = checkpoint.get(key)
        masks = state.get('masks') if isinstance(state, Mapping) and \
            key != 'masks' else state
        if masks:
            return unpack_masks(masks)
    return None


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Any],
                     masks: Optional[Mapping[str, torch.Tensor]] = None
                     ) -> None:
    """Check that a state dict (and its masks) fit a model.

    Raises ``ValueError`` with one line naming the first parameter that does
    not fit: a key the model lacks or misses, a shape that differs, a mask
    for no parameter of the model or of another shape, or a weight with
    non-zeros where its mask prunes.

    Args:
        model (nn.Module): The (dense or sparsified) model.
        state_dict (Mapping): The checkpoint's state dict.
        masks (Mapping, optional): Parameter name to boolean keep-mask.
            Defaults to None.
    """
    own = model.state_dict()
    unexpected = [k for k in state_dict if k not in own]
    missing = [k for k in own if k not in state_dict]
    for keys, what in ((unexpected, 'has a key the model lacks'),
                       (missing, 'lacks the model key')):
        if keys:
            more = f' (and {len(keys) - 1} more)' if len(keys) > 1 else ''
            raise ValueError(f'checkpoint {what}: {keys[0]!r}{more}; model '
                             f'{type(model).__name__}')
    for key, value in state_dict.items():
        if torch.is_tensor(value) and tuple(value.shape) != tuple(
                own[key].shape):
            raise ValueError(f'checkpoint parameter {key!r} has shape '
                             f'{tuple(value.shape)}, the model\'s is '
                             f'{tuple(own[key].shape)}')
    for name, mask in (masks or {}).items():
        if name not in own:
            raise ValueError(f'checkpoint mask {name!r} names no parameter '
                             f'of the model {type(model).__name__}')
        if tuple(mask.shape) != tuple(own[name].shape):
            raise ValueError(f'checkpoint mask {name!r} has shape '
                             f'{tuple(mask.shape)}, the parameter\'s is '
                             f'{tuple(own[name].shape)}')
        weight = state_dict[name]
        outside = int(torch.count_nonzero(weight[~mask.bool()]))
        if outside:
            raise ValueError(f'checkpoint parameter {name!r} has {outside} '
                             'non-zeros where its mask prunes (masks and '
                             'weights do not match)')


def load_sparse_model(model: nn.Module,
                      checkpoint: Union[str, Mapping[str, Any]],
                      sparse_kernels: bool = True,
                      min_sparsity: float = DEFAULT_MIN_SPARSITY,
                      kernel: str = 'csr',
                      layers: Sequence[str] = DEFAULT_LAYERS,
                      exclude: Optional[Sequence[str]] = None
                      ) -> List[Dict[str, Any]]:
    """Load a (sparse or dense) checkpoint and switch sparse kernels on.

    Args:
        model (nn.Module): The dense architecture of the checkpoint.
        checkpoint (str | Mapping): A file written by
            :func:`~mmsparse.utils.sparse_checkpoint.save_sparse_checkpoint`
            or an ordinary checkpoint / state dict (path or loaded object).
            Masks of the pruning hooks in it are checked against the
            weights (:func:`check_state_dict`).
        sparse_kernels (bool): Swap layers (:func:`sparsify_model`) after
            loading. Defaults to True.
        min_sparsity (float): See :func:`sparsify_model`.
        kernel (str): See :func:`sparsify_model`. Defaults to 'csr'.
        layers (Sequence[str]): See :func:`sparsify_model`.
        exclude (Sequence[str], optional): See :func:`sparsify_model`.

    Returns:
        list[dict]: The swapped layers (empty when ``sparse_kernels`` is
        False).
    """
    from .sparse_checkpoint import densify_state_dict, is_sparse_checkpoint
    if isinstance(checkpoint, str):
        checkpoint = torch.load(checkpoint, map_location='cpu',
                                weights_only=False)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'load_sparse_model: checkpoint must be a path or a '
                         f'dict, got {type(checkpoint).__name__}')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if is_sparse_checkpoint(checkpoint):
        state_dict = densify_state_dict(state_dict)
    state_dict = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    check_state_dict(model, state_dict, checkpoint_masks(checkpoint))
    model.load_state_dict(state_dict, strict=True)
    if not sparse_kernels:
        return []
    return sparsify_model(model, min_sparsity, kernel, layers, exclude)
