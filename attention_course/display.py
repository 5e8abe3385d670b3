"""Show the package's own code inside a chapter, so what you read is what runs."""
from __future__ import annotations

import inspect

from IPython.display import Code


def show_source(obj) -> Code:
    """Syntax-highlighted source of a function or class from the course package."""
    return Code(inspect.getsource(obj), language="python")
