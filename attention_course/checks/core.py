"""What every check needs: failing with a clear message, reading results, comparing.

A check receives the learner's function (or the grader's stand-in for it), calls it
through ``remote.bind`` and compares the plain data that comes back with a reference
computed here. On a mismatch it tries the known wrong versions (misconceptions) and
names the one that matches.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

import numpy as np

from attention_course.checks import source
from attention_course_learner.remote import (
    RemoteObject, StudentCodeError, bind, call_echoing_arguments, fresh_learner, relabel,
)

__all__ = ["CheckFailed", "bind", "call", "call_keeping_arguments", "passed",
           "reporting_to", "judging_code", "forbid", "describe_error", "as_array",
           "expect_shape", "tolerance",
           "allclose", "expect_close", "expect_raises", "attribute", "prepare_module",
           "expect_depends_on_input", "fresh_learner", "fresh_call"]


class CheckFailed(AssertionError):
    """A check did not pass; the message says what was expected and what to try."""


_reporter: ContextVar[Callable[[str], None] | None] = ContextVar("check_reporter", default=None)
_learner_code: ContextVar[str | None] = ContextVar("learner_code", default=None)


def passed(text: str) -> None:
    """Say what passed: printed in a notebook, collected by the grader (``reporting_to``)."""
    report = _reporter.get()
    if report is None:
        print(f"✔ {text}")
    else:
        report(text)


@contextmanager
def reporting_to(report: Callable[[str], None]):
    """Send ``passed`` messages to ``report`` in this thread/context only."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


@contextmanager
def judging_code(code: str):
    """The learner's code as the grader read it from the notebook, for ``forbid``."""
    token = _learner_code.set(code)
    try:
        yield
    finally:
        _learner_code.reset(token)


def forbid(value, rules: dict[str, str], what: str) -> None:
    """Fail when the learner's code uses one of ``rules`` (dotted name -> why).

    The grader reads the code from the notebook itself (``judging_code``): whatever
    the learner's process would report about its classes could be forged. In class,
    the source of the learner's own object is read instead.
    """
    code = _learner_code.get()
    if code is None:
        code = "" if isinstance(value, RemoteObject) else source.source_of(value)
    for target, why in rules.items():
        if source.uses(code, target):
            raise CheckFailed(f"{what} uses {target}: {why}")


def describe_inputs(args: tuple, kwargs: dict) -> str:
    """'x: shape (2, 5, 8) float64, mask: shape (1, 6, 6) bool' for a call's arguments."""
    def one(value) -> str:
        shape = getattr(value, "shape", None)
        if shape is not None and not isinstance(value, RemoteObject):
            dtype = str(getattr(value, "dtype", "")).removeprefix("torch.")
            return f"shape {tuple(shape)} {dtype}".rstrip()
        if isinstance(value, (bool, int, float, str, type(None))):
            return repr(value)
        return type(value).__name__
    parts = [one(a) for a in args if not isinstance(a, RemoteObject)]
    parts += [f"{k}={one(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _failed_call(error: StudentCodeError, args: tuple, kwargs: dict) -> CheckFailed:
    text = describe_error(error)
    inputs = describe_inputs(args, kwargs)
    unrun = error.type_name == "NotImplementedError" or (
        error.type_name == "NameError" and error.message == f"name '{error.label}' is not defined")
    if inputs and not unrun:
        first, _, rest = text.partition("\n")
        text = f"{first}\n  called with: {inputs}" + (f"\n{rest}" if rest else "")
    return CheckFailed(text)


def call(function, *args, **kwargs):
    """Call learner code; turn an exception it raises into a readable CheckFailed that
    names the inputs' shapes."""
    try:
        return function(*args, **kwargs)
    except StudentCodeError as error:
        raise _failed_call(error, args, kwargs) from None


def call_keeping_arguments(function, *args, **kwargs):
    """(result, args, kwargs) with the arguments as the learner's call left them, to
    see whether it changed one in place."""
    try:
        return call_echoing_arguments(function, *args, **kwargs)
    except StudentCodeError as error:
        raise _failed_call(error, args, kwargs) from None


def describe_error(error: StudentCodeError) -> str:
    if error.type_name == "NotImplementedError":
        return (f"{error.label} is not implemented yet: replace `raise NotImplementedError()` "
                "with your code.")
    if error.type_name == "NameError" and error.message == f"name '{error.label}' is not defined":
        return (f"`{error.label}` is not defined: run the cell that defines it first. If that "
                "cell imports it from the course package (attention_course.…), write it yourself "
                "instead: the grader runs your notebook without the course's reference code.")
    text = f"your {error.label} raised {error.type_name}: {error.message}"
    if error.traceback_text:
        text += "\n" + error.traceback_text.rstrip()
    return text


def expect_raises(function, exception_name: str, what: str, *args, **kwargs) -> None:
    """The learner's code must raise ``exception_name`` (e.g. "ValueError")."""
    try:
        function(*args, **kwargs)
    except StudentCodeError as error:
        if error.type_name == "NotImplementedError" != exception_name:
            raise CheckFailed(describe_error(error)) from None
        if error.type_name != exception_name:
            raise CheckFailed(f"{what}: expected {exception_name}, got "
                              f"{error.type_name}: {error.message}") from None
        return
    raise CheckFailed(f"{what}: expected {exception_name}, but nothing was raised.")


def attribute(obj, name: str, what: str):
    """``obj.name`` of a learner's object, or a message saying it is missing."""
    try:
        return getattr(obj, name)
    except StudentCodeError as error:
        raise CheckFailed(f"{what} has no attribute `{name}` ({error.type_name}: "
                          f"{error.message}).") from None


def prepare_module(module, state: dict, dtype: str, what: str, naming_hint: str):
    """The learner's nn.Module in ``dtype`` and eval mode, holding the weights in ``state``."""
    import torch

    # The test sets the module up as torch modules are set up; an error here is not a
    # call the learner made, so it is named as the setup step it is.
    try:
        if dtype == "float64":
            module = module.double()
        module.eval()
        incompatible = module.load_state_dict(
            {key: tensor.to(getattr(torch, dtype)) for key, tensor in state.items()}, strict=False)
    except StudentCodeError as error:
        where = f"\n{error.traceback_text.rstrip()}" if error.traceback_text else ""
        raise CheckFailed(
            f"the test could not set up your {what} ({error.label.rsplit('.', 1)[-1]}() raised "
            f"{error.type_name}: {error.message}). It converts it to float64 and loads "
            f"weights, as for any nn.Module: call super().__init__() first in __init__ and keep "
            f"the layers as attributes ({naming_hint.removeprefix('use ')}){where}") from None
    unexpected = incompatible[1] if isinstance(incompatible, tuple) and len(incompatible) == 2 else []
    if unexpected:
        raise CheckFailed(f"{what} has no parameter(s) {', '.join(map(str, unexpected))}: "
                          f"{naming_hint}")
    # Calling it runs the learner's forward: name it so, not after the setup call above.
    return relabel(module, f"{what}.forward") if isinstance(module, RemoteObject) else module


def as_array(value, what: str, lib: str = "numpy") -> np.ndarray:
    """The learner's result as a NumPy array, or a message saying what came back instead.

    ``lib`` is "numpy" (expect an ndarray) or "torch" (expect a torch.Tensor).
    """
    if lib == "numpy" and isinstance(value, np.ndarray):
        return value
    if lib == "torch":
        import torch

        if isinstance(value, torch.Tensor):
            return value.numpy()
    expected = "a NumPy array" if lib == "numpy" else "a torch.Tensor"
    raise CheckFailed(f"{what} should be {expected}, but it is {_kind(value)}.")


def _kind(value) -> str:
    if isinstance(value, np.ndarray):
        return "a NumPy array"
    if type(value).__module__.startswith("torch"):
        return "a torch.Tensor"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} items"
    return f"a {type(value).__name__}" if value is not None else "None"


def expect_shape(array: np.ndarray, shape: tuple, what: str, hint: str = "") -> None:
    if tuple(array.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(array.shape)}, expected {tuple(shape)}."
                          + (f" {hint}" if hint else ""))


def tolerance(dtype) -> dict:
    """Comparison tolerances for results computed from inputs of ``dtype``."""
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-6, "atol": 1e-8}
    return {"rtol": 2e-4, "atol": 2e-5}


def allclose(actual: np.ndarray, expected: np.ndarray, dtype=np.float64,
             equal_nan: bool = False) -> bool:
    if actual.shape != expected.shape:
        return False
    if actual.dtype == bool or expected.dtype == bool:
        return bool(np.array_equal(actual, expected))
    return bool(np.allclose(actual.astype(np.float64), np.asarray(expected, dtype=np.float64),
                            equal_nan=equal_nan, **tolerance(dtype)))


def expect_close(actual: np.ndarray, expected: np.ndarray, what: str, dtype=np.float64,
                 misconceptions: dict[str, Callable[[], np.ndarray]] | None = None,
                 nonfinite_hint: str = "", context: str = "", shape_hint: str = "",
                 values_hint: str = "") -> None:
    """``actual`` must equal ``expected``; otherwise name the misconception it matches.

    ``misconceptions`` maps a message to a function computing what that mistake would
    return; they are only computed when the answer is wrong. ``nonfinite_hint`` explains
    nan/inf where the right answer is finite (usually an overflow); ``shape_hint`` is
    added to a wrong-shape message.
    """
    expect_shape(actual, expected.shape, what + context, shape_hint)
    if allclose(actual, expected, dtype):
        return
    for message, wrong in (misconceptions or {}).items():
        with np.errstate(all="ignore"):  # a mistake's values may well overflow
            candidate = wrong()
        # All-nan (an overflowed mistake) explains nothing; some nan (masked rows) may.
        if candidate is None or not np.isfinite(np.asarray(candidate, dtype=float)).any():
            continue
        if allclose(actual, np.asarray(candidate), dtype, equal_nan=True):
            raise CheckFailed(f"{what}{context}: {message}")
    if (actual.dtype != bool and not np.all(np.isfinite(actual))
            and np.all(np.isfinite(expected))):
        raise CheckFailed(f"{what}{context} contains nan or inf where the correct values are "
                          "finite." + (f" {nonfinite_hint}" if nonfinite_hint else ""))
    difference = np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))
    raise CheckFailed(f"{what}{context}: wrong values (largest difference from the reference "
                      f"{difference:.3g})." + (f" {values_hint}" if values_hint else ""))


def fresh_call(function, *args, **kwargs):
    """``call`` on a learner whose earlier calls left no trace: a property test compares
    outputs for related inputs, which code that remembers inputs could fake."""
    fresh_learner(function)
    return call(function, *args, **kwargs)


def expect_depends_on_input(cases: list[tuple[tuple, np.ndarray]], what: str) -> None:
    """A property test's outputs must say something about its inputs.

    ``cases`` pairs the inputs of a call with its output, for at least two different
    inputs. Code that returns zeros, a constant or one of its inputs unchanged keeps
    equivariance, causality and padding trivially; it fails here instead of earning
    those points.
    """
    advice = ("so this property says nothing about it: compute the output from the "
              "input.")
    outputs = [np.asarray(output, dtype=np.float64) for _, output in cases]
    if all(np.allclose(outputs[0], other) for other in outputs[1:]):
        raise CheckFailed(f"{what} gives the same output for different inputs, "
                          f"{advice}")
    for inputs, output in cases:
        for given in inputs:
            given = np.asarray(given, dtype=np.float64)
            if given.shape == output.shape and np.allclose(given, output):
                raise CheckFailed(f"{what} returns its input unchanged, {advice}")
