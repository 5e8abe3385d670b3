"""Made-up submissions for the grader tests: hostile ones (attacks.py) and honest
mistakes or noisy-but-correct code (mistakes.py)."""
