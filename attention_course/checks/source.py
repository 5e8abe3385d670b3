"""Which library functions and classes a learner's code uses, read from its source.

A rule such as "do not subclass nn.TransformerEncoderLayer" cannot be checked by
asking the learner's process (it would answer whatever it likes), so the grader
reads the notebook's code itself. Names are resolved through the cells' imports:
``F.scaled_dot_product_attention`` after ``import torch.nn.functional as F`` is
``torch.nn.functional.scaled_dot_product_attention``, while a learner's own function
of the same name is not. Strings naming a rule's target (``getattr(nn, "...")``)
count as a use too. In class, the learner's own objects give the source instead
(``source_of``).
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap


DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _parse(source: str) -> list[ast.Module]:
    """Each cell (separated by the grader) or the whole text, skipping what does not
    parse and IPython's magics."""
    trees = []
    for chunk in source.split("\n# %% cell\n"):
        lines = [line for line in chunk.splitlines()
                 if not line.lstrip().startswith(("%", "!"))]
        try:
            trees.append(ast.parse(textwrap.dedent("\n".join(lines))))
        except SyntaxError:
            continue
    return trees


@functools.lru_cache(maxsize=16)  # each test of a submission asks about the same code
def names_used(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """(dotted names the code uses, resolved through its imports; string constants)."""
    trees = _parse(source)
    aliases: dict[str, str] = {}
    defined: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, DEFINITIONS):
                defined.add(node.name)
    used, strings = set(), set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Attribute, ast.Name)):
                dotted = _dotted(node)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                if head in aliases:
                    used.add(aliases[head] + (f".{rest}" if rest else ""))
                elif head not in defined:
                    used.add(dotted)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                module = getattr(node, "module", None)
                for alias in node.names:
                    used.add(f"{module}.{alias.name}" if module else alias.name)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value)
    return frozenset(used), frozenset(strings)


def uses(source: str, target: str) -> bool:
    """Whether the code uses ``target`` (e.g. "torch.nn.TransformerEncoderLayer"):
    the name itself, the same class or function reached through another torch
    module, the bare name imported with ``*``, or a string spelling it."""
    final = target.rsplit(".", 1)[-1]
    top = target.split(".", 1)[0]
    used, strings = names_used(source)
    for name in used:
        if name == target or name == final:
            return True
        if name.rsplit(".", 1)[-1] == final and name.split(".", 1)[0] == top:
            return True
    return any(text == final or text.endswith("." + final) for text in strings)


def source_of(value) -> str:
    """The learner's source for a function or class in class (empty if not found):
    a class's methods give it when the class itself has no file (notebooks)."""
    try:
        return inspect.getsource(value)
    except (OSError, TypeError):
        pass
    if not isinstance(value, type):
        return ""
    parts = []
    for cls in value.__mro__:
        if cls.__module__ != getattr(value, "__module__", None):
            continue
        parts.append(f"class {cls.__name__}({', '.join(_base_names(cls))}):\n    pass")
        for member in vars(cls).values():
            try:
                parts.append(textwrap.dedent(inspect.getsource(member)))
            except (OSError, TypeError):
                continue
    return "\n# %% cell\n".join(parts)


def _base_names(cls: type) -> list[str]:
    return [f"{base.__module__}.{base.__qualname__}" for base in cls.__bases__]
