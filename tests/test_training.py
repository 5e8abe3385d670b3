"""The shared training loop: schedule and loss history."""
import torch

from attention_course.training import train


def test_train_fits_a_line_and_reports_every_loss():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    losses = train(model, lambda step: ((model(x) - y) ** 2).mean(), steps=300, lr=5e-2, warmup=10, progress=False)
    assert len(losses) == 300
    assert losses[-1] < 1e-3 * losses[0]
    assert not model.training  # left in eval mode
