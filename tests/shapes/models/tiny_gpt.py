"""A small decoder-only transformer, written for tensorlens's shape tests (our own code)."""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TinyConfig:
    vocab: int = 96
    context: int = 32
    width: int = 48
    heads: int = 4
    layers: int = 2


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.heads
        self.width = cfg.width
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.out = nn.Linear(cfg.width, cfg.width)
        mask = torch.tril(torch.ones(cfg.context, cfg.context))
        self.register_buffer("mask", mask.view(1, 1, cfg.context, cfg.context))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.width, dim=-1)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.heads)
        scores = scores.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        weights = F.softmax(scores, dim=-1)
        mixed = weights @ v
        merged = mixed.transpose(1, 2).contiguous().view(B, T, C)
        return self.out(merged)


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.up = nn.Linear(cfg.width, 4 * cfg.width)
        self.down = nn.Linear(4 * cfg.width, cfg.width)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        hidden = F.gelu(self.up(x))
        return self.drop(self.down(hidden))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width)
        self.attn = SelfAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.width)
        self.ff = FeedForward(cfg)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.ff(self.norm2(x))
        return x


class TinyGPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tokens = nn.Embedding(cfg.vocab, cfg.width)
        self.positions = nn.Embedding(cfg.context, cfg.width)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.vocab, bias=False)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long)
        tok = self.tokens(idx)
        where = self.positions(pos)
        x = tok + where
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        logits = self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


if __name__ == "__main__":
    cfg = TinyConfig()
    model = TinyGPT(cfg)
    idx = torch.randint(0, cfg.vocab, (4, 16))
    targets = torch.randint(0, cfg.vocab, (4, 16))
    logits, loss = model(idx, targets)
    probs = F.softmax(logits[:, -1, :], dim=-1)
    top = torch.topk(probs, 5, dim=-1)
