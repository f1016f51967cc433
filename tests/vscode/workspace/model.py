"""A small PyTorch model, compiled."""
import torch
import torch.nn.functional as F


class MLP(torch.nn.Module):
    def __init__(self, width: int = 256):
        super().__init__()
        self.up = torch.nn.Linear(width, 4 * width)
        self.down = torch.nn.Linear(4 * width, width)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


model = torch.compile(MLP())
