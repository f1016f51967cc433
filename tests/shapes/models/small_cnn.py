"""A small convolutional classifier, written for tensorlens's shape tests (our own code)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        return self.pool(y)


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, kernel_size=5, stride=1, padding=2)
        self.block1 = ConvBlock(16, 32)
        self.block2 = ConvBlock(32, 64)
        self.features = nn.Sequential(
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.fc = nn.Linear(64, classes)

    def forward(self, images):
        x = F.relu(self.stem(images))
        x = self.block1(x)
        x = self.block2(x)
        x = self.features(x)
        flat = torch.flatten(x, 1)
        return self.fc(flat)


if __name__ == "__main__":
    net = SmallCNN()
    batch = torch.randn(8, 3, 32, 32)
    scores = net(batch)
    labels = torch.randint(0, 10, (8,))
    loss = F.cross_entropy(scores, labels)
    best = scores.argmax(dim=1)
