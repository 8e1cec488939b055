"""Structured gates of P3B applied to an unmodified ViT through hooks.

Every encoder block has two prunable sub-blocks ("blocks" in the paper):
the attention and the MLP. Each gets three gate vectors:

============  ===========  =================================================
gate          length       multiplies
============  ===========  =================================================
attn_in       D            norm1 output (= qkv input columns)
attn_head     D / H        q, k and v of every head (shared by all heads)
attn_out      D            proj output (the residual update)
mlp_in        D            norm2 output (= fc1 input columns)
mlp_hidden    4D           fc2 input (after the activation)
mlp_out       D            fc2 output (the residual update)
============  ===========  =================================================

Gates are plain tensors owned by :class:`GatedViT`, applied by forward
hooks, so the task model's ``state_dict`` keys do not change and a dense
checkpoint still loads strictly. The same hooks capture the residual stream
before and after every sub-block for the probe heads.

By default the gates are folded into the parameters of the adjacent layers
for the duration of their forward call (``fold=True``): ``attn_in`` and
``mlp_in`` scale the affine weight and bias of ``norm1`` / ``norm2``,
``attn_head`` the q/k/v rows of ``qkv``, ``attn_out`` the rows of ``proj``,
``mlp_hidden`` / ``mlp_out`` the columns / rows of ``fc2``. The gated
function is the same, e.g. ``(x W^T + b) * m = x (m W)^T + m b``, and so is
``dL/dm``, which autograd now gets from the parameter-sized product
(``dL/dm_j = sum_i dL/dW'_ji W_ji + dL/db'_j b_j``) instead of a reduction
over batch x tokens: the cost is O(parameters) per step instead of
O(batch x tokens x width), no activation-sized tensor is multiplied or
saved for the backward, and attention keeps its fused kernel. ``fold=False``
multiplies the activations instead (the original implementation, kept as
the reference the folded one is tested against).
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from .adapter import BlockView, ViTView

ATTN_GATES = ('attn_in', 'attn_head', 'attn_out')
MLP_GATES = ('mlp_in', 'mlp_hidden', 'mlp_out')
GATE_NAMES = ATTN_GATES + MLP_GATES


def gate_sizes(block: BlockView) -> Dict[str, int]:
    """Length of each gate of ``block``."""
    dims = block.embed_dims
    return dict(attn_in=dims, attn_head=block.head_dims, attn_out=dims,
                mlp_in=dims, mlp_hidden=block.hidden_dims, mlp_out=dims)


def attn_params(a, h, o, num_heads: int, qkv_bias: bool = True,
                proj_bias: bool = True):
    """Parameters of an attention sub-block keeping ``a`` input dims, ``h``
    dims per head and ``o`` output dims (tensors or ints, broadcast).

    ``norm1`` (2a) + qkv (3Hh x a + 3Hh) + proj (o x Hh + o). With no input
    or no head dims left the sub-block outputs a constant (o parameters);
    with no output dims it is skipped (0 parameters).
    """
    a, h, o = (torch.as_tensor(v, dtype=torch.float64) for v in (a, h, o))
    qkv = 3 * num_heads * h
    full = 2 * a + qkv * a + qkv * float(qkv_bias) + num_heads * h * o \
        + o * float(proj_bias)
    const = (a == 0) | (h == 0)
    return torch.where(o == 0, torch.zeros_like(full),
                       torch.where(const, o, full))


def mlp_params(a, f, o, fc1_bias: bool = True, fc2_bias: bool = True):
    """Parameters of an MLP sub-block keeping ``a`` input dims, ``f`` hidden
    neurons and ``o`` output dims: ``norm2`` (2a) + fc1 (f x a + f) + fc2
    (o x f + o); constant with a = 0 or f = 0, skipped with o = 0.
    """
    a, f, o = (torch.as_tensor(v, dtype=torch.float64) for v in (a, f, o))
    full = 2 * a + f * a + f * float(fc1_bias) + f * o + o * float(fc2_bias)
    const = (a == 0) | (f == 0)
    return torch.where(o == 0, torch.zeros_like(full),
                       torch.where(const, o, full))


def sub_block_params(block: BlockView, is_mlp: bool, a, mid, o):
    """:func:`attn_params` or :func:`mlp_params` for a block's sub-block."""
    if is_mlp:
        return mlp_params(a, mid, o, block.fc1.bias is not None,
                          block.fc2.bias is not None)
    return attn_params(a, mid, o, block.num_heads, block.qkv_bias,
                       block.proj.bias is not None)


def dense_sub_block_params(view: ViTView) -> torch.Tensor:
    """Dense parameter count of every sub-block (attention, MLP, ...)."""
    counts = []
    for block in view.blocks:
        sizes = gate_sizes(block)
        for is_mlp, names in ((False, ATTN_GATES), (True, MLP_GATES)):
            counts.append(float(sub_block_params(
                block, is_mlp, *[sizes[n] for n in names])))
    return torch.tensor(counts, dtype=torch.float64)


class GatedViT(nn.Module):
    """Gates and feature taps on the blocks of a ViT.

    The gates are held in ``self.gates`` (a :class:`torch.nn.ParameterDict`
    of this module, not of the task model) and applied by hooks while
    ``self.active`` is set. ``self.capture`` makes the hooks store the
    residual stream before/after each sub-block in ``self.features``
    (detached; 2L + 1 tensors for L blocks).

    Args:
        view (ViTView): The backbone's blocks.
        fold (bool): Apply the gates by scaling the parameters of the
            adjacent layers during their forward call (O(parameters) per
            step) instead of multiplying the activations (O(batch x tokens
            x width); the original implementation, same outputs and gate
            gradients up to rounding). Defaults to True.
    """

    def __init__(self, view: ViTView, fold: bool = True) -> None:
        super().__init__()
        self.view = view
        self.gates = nn.ParameterDict()
        for idx, block in enumerate(view.blocks):
            for name, size in gate_sizes(block).items():
                self.gates[self.key(idx, name)] = nn.Parameter(
                    torch.ones(size, device=block.qkv.weight.device),
                    requires_grad=False)
        self.active = False
        self.capture = False
        self.fold = bool(fold)
        self.features: List[Optional[torch.Tensor]] = []
        self.patch_hw = None
        self._handles = []
        self._swapped: Dict[int, Dict[str, torch.Tensor]] = {}
        self._install()

    @staticmethod
    def key(block_idx: int, name: str) -> str:
        """Name of a gate in ``self.gates``."""
        return f'{block_idx}_{name}'

    def gate(self, block_idx: int, name: str) -> nn.Parameter:
        """The gate ``name`` of block ``block_idx``."""
        return self.gates[self.key(block_idx, name)]

    def sub_block_gates(self, sub_idx: int) -> List[nn.Parameter]:
        """The three gates of sub-block ``sub_idx`` (2l: attention, 2l+1:
        MLP of block l)."""
        names = MLP_GATES if sub_idx % 2 else ATTN_GATES
        return [self.gate(sub_idx // 2, n) for n in names]

    @property
    def num_sub_blocks(self) -> int:
        return 2 * len(self.view.blocks)

    def set_requires_grad(self, flag: bool) -> None:
        for g in self.gates.values():
            g.requires_grad_(flag)
            g.grad = None

    def set_fold(self, fold: bool) -> None:
        """Switch between folded gates and activation gates (reinstalls the
        hooks; ``active`` and ``capture`` are kept)."""
        active, capture = self.active, self.capture
        self.remove()
        self.fold = bool(fold)
        self._install()
        self.active, self.capture = active, capture

    # ------------------------------------------------- activation gates
    def _mul(self, key: str):
        def hook(module, args, output):
            if not self.active:
                return None
            return output * self.gates[key].to(output.dtype)
        return hook

    def _mul_input(self, key: str):
        def hook(module, args):
            if not self.active:
                return None
            return (args[0] * self.gates[key].to(args[0].dtype), ) + args[1:]
        return hook

    def _head_hook(self, key: str, three):
        def hook(module, args, output):
            if not self.active:
                return None
            g = self.gates[key].to(output.dtype)
            out = output.unflatten(-1, three) * g
            return out.flatten(-3)
        return hook

    def _install_activation_gates(self, idx: int, b: BlockView) -> None:
        reg = self._handles.append
        three = (3, b.num_heads, b.head_dims)
        reg(b.norm1.register_forward_hook(
            self._mul(self.key(idx, 'attn_in'))))
        reg(b.qkv.register_forward_hook(
            self._head_hook(self.key(idx, 'attn_head'), three)))
        reg(b.proj.register_forward_hook(
            self._mul(self.key(idx, 'attn_out'))))
        reg(b.norm2.register_forward_hook(
            self._mul(self.key(idx, 'mlp_in'))))
        reg(b.fc2.register_forward_pre_hook(
            self._mul_input(self.key(idx, 'mlp_hidden'))))
        reg(b.fc2.register_forward_hook(
            self._mul(self.key(idx, 'mlp_out'))))

    # ----------------------------------------------------- folded gates
    def _factor(self, key: Optional[str], repeat: int, dtype):
        if key is None:
            return None
        g = self.gates[key].to(dtype)
        return g.repeat(repeat) if repeat > 1 else g

    def _fold_in(self, rows: Optional[str], cols: Optional[str] = None,
                 repeat: int = 1):
        """Pre-hook that swaps the module's ``weight`` (and ``bias``) for
        the gated ``rows[:, None] * W * cols[None, :]`` (``rows * b``) until
        the module's forward returns (:meth:`_fold_out`)."""
        def hook(module, args):
            if not self.active:
                return None
            params = module._parameters
            weight, bias = params['weight'], params.get('bias')
            r = self._factor(rows, repeat, weight.dtype)
            c = self._factor(cols, 1, weight.dtype)
            if weight.dim() == 1:  # LayerNorm: elementwise
                scale = r
            elif c is None:
                scale = r[:, None]
            elif r is None:
                scale = c
            else:
                scale = torch.outer(r, c)
            self._swapped[id(module)] = dict(weight=weight, bias=bias)
            params['weight'] = weight * scale
            if bias is not None:
                params['bias'] = bias if r is None else bias * r
            return None
        return hook

    def _fold_out(self, module, args, output) -> None:
        # always_call: the parameters come back even if forward raised
        saved = self._swapped.pop(id(module), None)
        if saved is not None:
            module._parameters.update(saved)

    def _install_folded_gates(self, idx: int, b: BlockView) -> None:
        reg = self._handles.append
        key = self.key
        plan = ((b.norm1, self._fold_in(key(idx, 'attn_in'))),
                (b.qkv, self._fold_in(key(idx, 'attn_head'),
                                      repeat=3 * b.num_heads)),
                (b.proj, self._fold_in(key(idx, 'attn_out'))),
                (b.norm2, self._fold_in(key(idx, 'mlp_in'))),
                (b.fc2, self._fold_in(key(idx, 'mlp_out'),
                                      key(idx, 'mlp_hidden'))))
        for module, pre_hook in plan:
            reg(module.register_forward_pre_hook(pre_hook))
            reg(module.register_forward_hook(self._fold_out,
                                             always_call=True))

    # ------------------------------------------------------------ taps
    def _tap(self, index: int):
        def hook(module, args):
            if self.capture:
                self.features[index] = args[0].detach()
        return hook

    def _tap_output(self, index: int):
        def hook(module, args, output):
            if self.capture:
                out = output[0] if isinstance(output, tuple) else output
                self.features[index] = out.detach()
        return hook

    def _tap_patch_embed(self, module, args, output):
        if not self.capture:
            return
        if isinstance(output, tuple) and len(output) == 2 and isinstance(
                output[1], (tuple, list)):
            self.patch_hw = tuple(int(v) for v in output[1])
        elif isinstance(output, torch.Tensor) and output.dim() == 4:
            self.patch_hw = tuple(output.shape[-2:]) \
                if output.shape[1] == self.view.embed_dims \
                else tuple(output.shape[1:3])

    def _install(self) -> None:
        blocks = self.view.blocks
        self.features = [None] * (2 * len(blocks) + 1)
        reg = self._handles.append
        for idx, b in enumerate(blocks):
            # taps first: they see the residual stream, before any gate
            reg(b.norm1.register_forward_pre_hook(self._tap(2 * idx)))
            reg(b.norm2.register_forward_pre_hook(self._tap(2 * idx + 1)))
            if self.fold:
                self._install_folded_gates(idx, b)
            else:
                self._install_activation_gates(idx, b)
        reg(blocks[-1].layer.register_forward_hook(
            self._tap_output(2 * len(blocks))))
        patch_embed = getattr(self.view.backbone, 'patch_embed', None)
        if isinstance(patch_embed, nn.Module):
            reg(patch_embed.register_forward_hook(self._tap_patch_embed))

    def remove(self) -> None:
        """Detach all hooks from the task model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.active = False
        self.capture = False

    def kept_counts(self, sub_idx: int) -> List[int]:
        """Hard-kept elements of the three gates of a sub-block."""
        return [int((g.detach() >= 0.5).sum()) for g in
                self.sub_block_gates(sub_idx)]

    def sub_block_kept_params(self, sub_idx: int) -> float:
        """Parameters sub-block ``sub_idx`` keeps under the hard masks."""
        block = self.view.blocks[sub_idx // 2]
        return float(sub_block_params(block, bool(sub_idx % 2),
                                      *self.kept_counts(sub_idx)))
