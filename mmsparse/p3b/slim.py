"""Physically slimmed ViT blocks: the result of P3B's finalize step.

A slim block keeps every attention head but only the kept per-head width,
and only the kept input / hidden / output dimensions of each sub-block.
Its outputs equal the gated dense block's:

- the norm computes its statistics over the full residual width (as the
  dense LayerNorm does) and outputs the kept dimensions only;
- gate values of kept elements and layer scales are folded into the
  weights, so any gate values (not only 0/1) give the same result as long
  as the dropped elements' gates are 0;
- the residual update is added onto the kept output dimensions: in
  PyTorch one ``index_add``; exported to ONNX, the update, padded with one
  zero column, is gathered to the full width by the inverse of the kept
  index (every residual dim to its position in the update, or to the zero
  column): ``Pad`` + ``Gather`` + ``Add``, no scatter, no extra
  multiply-adds;
- the attention keeps the dense logit scale (``head_dims ** -0.5`` of the
  dense model, not of the slim head width);
- a sub-block without input or inner dimensions outputs a constant (a
  learned bias vector on the kept outputs); one without output dimensions
  is skipped entirely.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .adapter import ACTIVATIONS, BlockView
from .gates import ATTN_GATES, MLP_GATES


def take_last(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[..., index]`` for a 1-D ``index``.

    In PyTorch one ``gather`` with a broadcast index (a single kernel; its
    backward is a scatter-add), exported to ONNX as ``Gather`` on the last
    axis with the 1-D index (``index_select``; a broadcast ``gather``
    would export as ``GatherElements`` with an index of the full shape).
    Both give the same values.
    """
    if torch.onnx.is_in_onnx_export():
        return x.index_select(x.dim() - 1, index)
    return torch.gather(x, -1, index.expand(*x.shape[:-1], -1))


def inverse_index(index: torch.Tensor, dims: int) -> torch.Tensor:
    """Position of each of ``dims`` dims in ``index``, ``len(index)`` where
    a dim is not in it.

    ``take_last(F.pad(y, (0, 1)), inverse_index(index, dims))`` is ``y``
    scattered to the width ``dims`` at ``index`` (zeros elsewhere).

    Args:
        index (Tensor): Distinct dims in ``[0, dims)``, 1-D int64.
        dims (int): The full width.

    Returns:
        Tensor: int64, shape ``(dims, )``, on the device of ``index``.
    """
    k = index.numel()
    if torch.jit.is_tracing():
        # a constant of the traced graph, not an index_copy (a scatter)
        inv = [k] * dims
        for j, d in enumerate(index.tolist()):
            inv[d] = j
        return torch.tensor(inv, dtype=torch.long, device=index.device)
    inv = torch.full((dims, ), k, dtype=torch.long, device=index.device)
    return inv.index_copy(0, index, torch.arange(k, device=index.device))


def place_last(y: torch.Tensor, index: torch.Tensor,
               dims: int) -> torch.Tensor:
    """``y`` on the last axis at ``index`` of a width ``dims``, zero
    elsewhere.

    In PyTorch one ``index_copy`` into zeros; exported to ONNX (where that
    would be a scatter), ``y`` padded with one zero column and gathered by
    :func:`inverse_index`: ``Pad`` + ``Gather``.
    """
    if torch.onnx.is_in_onnx_export():
        return take_last(F.pad(y, (0, 1)), inverse_index(index, dims))
    return y.new_zeros(*y.shape[:-1], dims).index_copy(y.dim() - 1, index, y)


class DropPath(nn.Module):
    """Stochastic depth per sample.

    Args:
        drop_prob (float): Probability of dropping the branch.
            Defaults to 0.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1))
        return x * mask.bernoulli_(keep) / keep


class SlimNorm(nn.Module):
    """LayerNorm over the full width, affine output on kept dims only.

    Args:
        dims (int): Width the statistics are computed over.
        keep (int): Number of output dimensions.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self, dims: int, keep: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dims, self.eps = dims, eps
        self.weight = nn.Parameter(torch.ones(keep))
        self.bias = nn.Parameter(torch.zeros(keep))
        self.register_buffer('index', torch.arange(keep))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.numel() == self.dims:
            return F.layer_norm(x, (self.dims, ), self.weight, self.bias,
                                self.eps)
        # The affine runs inside the full-width layer_norm (weight and bias
        # zero on the dropped dims), then one gather keeps the kept dims:
        # faster on CPU than layer_norm + index_select(-1) + affine
        # (index_select along the last dim is a slow strided copy). Equal
        # up to float rounding. Exported: Pad + Gather on the parameters
        # (folded by onnxruntime), LayerNormalization, Gather.
        weight = place_last(self.weight, self.index, self.dims)
        bias = place_last(self.bias, self.index, self.dims)
        out = F.layer_norm(x, (self.dims, ), weight, bias, self.eps)
        out = take_last(out, self.index)
        # dtype of ``normed x * weight + bias``: fp32 for a bf16 / fp16 ``x``
        dtype = torch.promote_types(x.dtype, self.weight.dtype)
        return out if out.dtype == dtype else out.to(dtype)


class _SlimBranch(nn.Module):
    """Shared residual logic of :class:`SlimAttention` and :class:`SlimMlp`.

    ``mode`` is 'full', 'const' (no input or inner dims: adds a constant)
    or 'skip' (no output dims).
    """

    def __init__(self, embed_dims: int, in_dims: int, inner_dims: int,
                 out_dims: int, drop_path: float) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        if out_dims == 0:
            self.mode = 'skip'
        elif in_dims == 0 or inner_dims == 0:
            self.mode = 'const'
            self.const = nn.Parameter(torch.zeros(out_dims))
        else:
            self.mode = 'full'
        self.register_buffer('out_index', torch.arange(out_dims))
        self.drop_path = DropPath(drop_path)

    def branch(self, x: torch.Tensor, attn_mask=None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Residual update: ``x`` plus the branch on the kept outputs."""
        if self.mode == 'skip':
            return x
        if self.mode == 'const':
            y = self.const.to(x.dtype)
            if self.training and self.drop_path.drop_prob > 0:
                y = y.expand(*x.shape[:-1], -1)  # dropped per sample
        else:
            y = self.branch(x, attn_mask)
        # under autocast y is fp16 / bf16 while the residual stays fp32
        y = self.drop_path(y).to(x.dtype)
        if self.out_index.numel() == self.embed_dims:
            return x + y
        if not torch.onnx.is_in_onnx_export():
            # eager: one index_add onto the kept output dims
            return x.index_add(x.dim() - 1, self.out_index,
                               y.expand(*x.shape[:-1], -1))
        # exported: Pad + Gather to all D dims, Add (no scatter)
        return x + place_last(y, self.out_index, self.embed_dims)


class SlimAttention(_SlimBranch):
    """Attention sub-block with a reduced per-head width.

    Args:
        embed_dims (int): Residual width D.
        num_heads (int): Heads (all kept).
        in_dims (int): Kept input dimensions.
        head_dims (int): Kept width per head (shared by q, k, v).
        out_dims (int): Kept output dimensions.
        qk_scale (float): Logit scale of the dense model.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
        qkv_bias (bool): Bias on qkv. Defaults to True.
        proj_bias (bool): Bias on proj. Defaults to True.
        drop_path (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 in_dims: int,
                 head_dims: int,
                 out_dims: int,
                 qk_scale: float,
                 eps: float = 1e-6,
                 qkv_bias: bool = True,
                 proj_bias: bool = True,
                 drop_path: float = 0.0) -> None:
        super().__init__(embed_dims, in_dims, head_dims, out_dims, drop_path)
        self.num_heads, self.head_dims = num_heads, head_dims
        self.qk_scale = qk_scale
        if self.mode == 'full':
            self.norm = SlimNorm(embed_dims, in_dims, eps)
            self.qkv = nn.Linear(in_dims, 3 * num_heads * head_dims,
                                 bias=qkv_bias)
            self.proj = nn.Linear(num_heads * head_dims, out_dims,
                                  bias=proj_bias)

    def branch(self, x: torch.Tensor, attn_mask=None) -> torch.Tensor:
        B, N = x.shape[:2]
        qkv = self.qkv(self.norm(x)).reshape(B, N, 3, self.num_heads,
                                             self.head_dims)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if attn_mask is not None and attn_mask.dtype == torch.bool \
                and attn_mask.dim() == 2:
            attn_mask = attn_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, scale=self.qk_scale)
        return self.proj(out.transpose(1, 2).reshape(B, N, -1))


class SlimMlp(_SlimBranch):
    """MLP sub-block with reduced input, hidden and output widths.

    Args:
        embed_dims (int): Residual width D.
        in_dims (int): Kept input dimensions.
        hidden_dims (int): Kept hidden neurons.
        out_dims (int): Kept output dimensions.
        act (str): Activation name ('GELU', 'ReLU', 'SiLU').
            Defaults to 'GELU'.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
        fc1_bias (bool): Bias on fc1. Defaults to True.
        fc2_bias (bool): Bias on fc2. Defaults to True.
        drop_path (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 in_dims: int,
                 hidden_dims: int,
                 out_dims: int,
                 act: str = 'GELU',
                 eps: float = 1e-6,
                 fc1_bias: bool = True,
                 fc2_bias: bool = True,
                 drop_path: float = 0.0) -> None:
        super().__init__(embed_dims, in_dims, hidden_dims, out_dims,
                         drop_path)
        if act not in ACTIVATIONS:
            raise ValueError(f'SlimMlp: act must be one of '
                             f'{sorted(ACTIVATIONS)}, got {act!r}')
        if self.mode == 'full':
            self.norm = SlimNorm(embed_dims, in_dims, eps)
            self.fc1 = nn.Linear(in_dims, hidden_dims, bias=fc1_bias)
            self.act = ACTIVATIONS[act]()
            self.fc2 = nn.Linear(hidden_dims, out_dims, bias=fc2_bias)

    def branch(self, x: torch.Tensor, attn_mask=None) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class SlimBlock(nn.Module):
    """Pre-norm encoder block with per-sub-block widths.

    Args:
        embed_dims (int): Residual width D.
        num_heads (int): Attention heads.
        dims (dict): Kept sizes: ``attn_in, attn_head, attn_out, mlp_in,
            mlp_hidden, mlp_out``.
        qk_scale (float): Attention logit scale of the dense model.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
        act (str): MLP activation name. Defaults to 'GELU'.
        qkv_bias (bool): Bias on qkv. Defaults to True.
        drop_path (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 dims: Dict[str, int],
                 qk_scale: float,
                 eps: float = 1e-6,
                 act: str = 'GELU',
                 qkv_bias: bool = True,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        missing = set(ATTN_GATES + MLP_GATES) - set(dims)
        if missing:
            raise ValueError(f'SlimBlock: dims misses {sorted(missing)}')
        self.attn = SlimAttention(
            embed_dims, num_heads, dims['attn_in'], dims['attn_head'],
            dims['attn_out'], qk_scale, eps, qkv_bias, drop_path=drop_path)
        self.mlp = SlimMlp(
            embed_dims, dims['mlp_in'], dims['mlp_hidden'], dims['mlp_out'],
            act, eps, drop_path=drop_path)

    def forward(self, x: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.mlp(self.attn(x, attn_mask))


def slim_dims(gates: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """Kept sizes (gate >= 0.5) of one block's six gates."""
    return {k: int((g.detach() >= 0.5).sum()) for k, g in gates.items()}


def _kept(g: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(g >= 0.5).flatten()


def _scale(g: torch.Tensor, gamma: Optional[torch.Tensor]) -> torch.Tensor:
    return g if gamma is None else g * gamma.detach().to(g)


@torch.no_grad()
def slice_block(block: BlockView, gates: Dict[str, torch.Tensor],
                drop_path: Optional[float] = None) -> SlimBlock:
    """Cut one gated dense block down to a :class:`SlimBlock`.

    Args:
        block (BlockView): The dense block.
        gates (dict): Its six gate vectors by name (``attn_in`` ...).
            Elements with a gate < 0.5 are removed; kept gate values are
            folded into the weights.
        drop_path (float, optional): Stochastic depth of the slim block;
            None takes the dense block's attention rate. Defaults to None.

    Returns:
        SlimBlock: A block whose output equals the gated block's (when the
        removed elements' gates are 0).
    """
    g = {k: v.detach().to(block.qkv.weight) for k, v in gates.items()}
    H, hd = block.num_heads, block.head_dims
    slim = SlimBlock(
        block.embed_dims, H, slim_dims(g), block.qk_scale,
        eps=block.norm1.eps, act=block.act_name, qkv_bias=block.qkv_bias,
        drop_path=block.drop_path[0] if drop_path is None else drop_path)
    slim.to(block.qkv.weight)

    # attention
    attn = slim.attn
    out_idx = _kept(g['attn_out'])
    attn.out_index.copy_(out_idx)
    out_scale = _scale(g['attn_out'], block.gamma1)[out_idx]
    w_qkv = block.qkv.weight.view(3, H, hd, -1)
    b_qkv = block.qkv.bias.view(3, H, hd) if block.qkv_bias else None
    w_proj = block.proj.weight.view(-1, H, hd)
    b_proj = block.proj.bias
    if attn.mode == 'full':
        in_idx, h_idx = _kept(g['attn_in']), _kept(g['attn_head'])
        _fill_norm(attn.norm, block.norm1, g['attn_in'], in_idx)
        g_h = g['attn_head'][h_idx]
        attn.qkv.weight.copy_((w_qkv[:, :, h_idx][..., in_idx] *
                               g_h[:, None]).reshape(-1, len(in_idx)))
        if b_qkv is not None:
            attn.qkv.bias.copy_((b_qkv[:, :, h_idx] * g_h).flatten())
        attn.proj.weight.copy_(w_proj[out_idx][:, :, h_idx].flatten(1) *
                               out_scale[:, None])
        if b_proj is not None:
            attn.proj.bias.copy_(b_proj[out_idx] * out_scale)
    elif attn.mode == 'const':
        # No input (q, k, v = their biases: uniform attention, output = v)
        # or no head dims (v = 0).
        v = b_qkv[2] * g['attn_head'] if b_qkv is not None else \
            torch.zeros(H, hd).to(w_proj)
        c = w_proj.flatten(1) @ v.flatten()
        if b_proj is not None:
            c = c + b_proj
        attn.const.copy_(c[out_idx] * out_scale)

    # MLP
    mlp = slim.mlp
    out_idx = _kept(g['mlp_out'])
    mlp.out_index.copy_(out_idx)
    out_scale = _scale(g['mlp_out'], block.gamma2)[out_idx]
    b1, b2 = block.fc1.bias, block.fc2.bias
    if mlp.mode == 'full':
        in_idx, f_idx = _kept(g['mlp_in']), _kept(g['mlp_hidden'])
        _fill_norm(mlp.norm, block.norm2, g['mlp_in'], in_idx)
        mlp.fc1.weight.copy_(block.fc1.weight[f_idx][:, in_idx])
        if b1 is not None:
            mlp.fc1.bias.copy_(b1[f_idx])
        mlp.fc2.weight.copy_(block.fc2.weight[out_idx][:, f_idx] *
                             g['mlp_hidden'][f_idx][None, :] *
                             out_scale[:, None])
        if b2 is not None:
            mlp.fc2.bias.copy_(b2[out_idx] * out_scale)
    elif mlp.mode == 'const':
        hidden = block.act(b1 if b1 is not None else
                           torch.zeros(block.hidden_dims).to(b2))
        c = block.fc2.weight @ (hidden * g['mlp_hidden'])
        if b2 is not None:
            c = c + b2
        mlp.const.copy_(c[out_idx] * out_scale)
    return slim


def _fill_norm(slim_norm: SlimNorm, norm: nn.LayerNorm, gate: torch.Tensor,
               idx: torch.Tensor) -> None:
    slim_norm.index.copy_(idx)
    slim_norm.weight.copy_(norm.weight[idx] * gate[idx])
    slim_norm.bias.copy_(norm.bias[idx] * gate[idx])
