"""A small training loop shared by the chapters that train a model."""
from __future__ import annotations

import math
from typing import Callable

import torch
from tqdm.auto import tqdm


def train(model: torch.nn.Module, loss_fn: Callable[[int], torch.Tensor], steps: int,
          lr: float = 1e-3, warmup: int = 0, progress: bool = True,
          desc: str = "training") -> list[float]:
    """Adam for ``steps`` steps; ``loss_fn(step)`` draws a batch and returns the loss.

    The learning rate rises linearly over ``warmup`` steps, then follows a cosine down
    to 0. The progress bar comes from ``tqdm.auto``: a widget in a notebook (not
    stderr output), a text bar in a terminal. Returns the loss at every step.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    for step in bar:
        loss = loss_fn(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses
