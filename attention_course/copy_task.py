"""The copy task: name the first token of a random sequence, n - 1 positions back.

Chapter "Why attention wins" trains an LSTM and a single attention head on it to compare
how far each can carry a token; "Reading attention maps" trains the same attention head
again (same seed streams, so the same model) to test what its weights explain.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attention_course.runtime import generator_for
from attention_course.transformer import MultiHeadAttention

VOCAB = 8
WIDTH = 32


class LSTMReader(nn.Module):
    """Reads the sequence with an LSTM and answers from the last hidden state."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.lstm = nn.LSTM(WIDTH, WIDTH, batch_first=True)
        self.readout = nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens):
        return self.readout(self.lstm(self.embed(tokens))[0][:, -1])


class AttentionReader(nn.Module):
    """One attention head; the last position asks the only question."""

    def __init__(self, max_len=128):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.position = nn.Embedding(max_len, WIDTH)
        self.attn = MultiHeadAttention(WIDTH, num_heads=1)
        self.readout = nn.Linear(WIDTH, VOCAB)
        self.weights = None

    def hidden(self, tokens):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.embed(tokens) + self.position(positions)

    def forward(self, tokens, mask=None):
        h = self.hidden(tokens)
        # weights: (batch, 1 head, 1 query, n keys)
        out, self.weights = self.attn(h[:, -1:], h, h, mask)
        return self.readout(out[:, 0])


def copy_batch(n, size, generator, device="cpu"):
    """Random sequences and their answers, drawn on the CPU (the same on any device)."""
    tokens = torch.randint(0, VOCAB, (size, n), generator=generator).to(device)
    return tokens, tokens[:, 0]  # the answer is the first token


def train_and_test(model, n, device, steps=300, batch_size=64, lr=1e-2):
    """Adam on fresh batches (the same batches for every model), then test accuracy."""
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    data = generator_for(f"copy task training data, n = {n}")
    for _ in range(steps):
        tokens, answer = copy_batch(n, batch_size, data, device)
        loss = F.cross_entropy(model(tokens), answer)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test = generator_for(f"copy task test set, n = {n}")
    tokens, answer = copy_batch(n, 2000, test, device)
    with torch.no_grad():
        return model, (model(tokens).argmax(dim=-1) == answer).float().mean().item()
