"""A tiny timm-style ViT in plain torch for the P3B unit tests."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):

    def __init__(self, dims, heads):
        super().__init__()
        self.num_heads, self.head_dim = heads, dims // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):

    def __init__(self, dims, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dims)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):

    def __init__(self, dims, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=1e-6)
        self.attn = Attention(dims, heads)
        self.norm2 = nn.LayerNorm(dims, eps=1e-6)
        self.mlp = Mlp(dims, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ToyViT(nn.Module):
    """Patch 4 on 16x16 images: 16 patch tokens + cls."""

    num_extra_tokens = 1

    def __init__(self, dims=32, depth=2, heads=2, num_classes=5, img=16):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dims, 4, 4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dims) * .02)
        self.pos_embed = nn.Parameter(
            torch.randn(1, (img // 4)**2 + 1, dims) * .02)
        self.blocks = nn.ModuleList(
            [Block(dims, heads, 4 * dims) for _ in range(depth)])
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.head = nn.Linear(dims, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def train_steps(model, pruner, steps, start_step=0, seed=0, lr=1e-2):
    """A few SGD steps on random data driving the pruner."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    records = []
    for step in range(start_step, start_step + steps):
        x = torch.randn(8, 3, 16, 16, generator=gen)
        y = torch.randint(0, 5, (8, ), generator=gen)
        pruner.before_iter(step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec = pruner.after_iter(step, y)
        if rec is not None:
            records.append(rec)
    return records
