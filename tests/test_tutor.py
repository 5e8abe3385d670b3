"""The tutor's hook in an in-process IPython shell (the notebook test runs real kernels)."""
from __future__ import annotations

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

from attention_course.checks import tutor
from attention_course.checks.core import CheckFailed, call, describe_inputs
from attention_course_learner.remote import bind


@pytest.fixture
def shell(monkeypatch):
    shell = InteractiveShell.instance()
    shown = []
    monkeypatch.setattr(shell, "_showtraceback", lambda etype, value, stb: shown.append(stb))
    assert tutor.install(shell)
    yield shell, shown
    shell.set_custom_exc((), None)


def test_outside_ipython_nothing_is_installed():
    assert tutor.install(None) is False


def test_a_failed_check_shows_its_message_only(shell):
    shell, shown = shell
    shell.user_ns["CheckFailed"] = CheckFailed
    result = shell.run_cell("raise CheckFailed('softmax(x) for x of shape (4, 6): it is "
                            "normalised along axis 0')")
    assert isinstance(result.error_in_exec, CheckFailed)  # the cell still fails (0 points)
    (lines,) = shown
    assert len(lines) == 1 and "Test failed" in lines[0] and "shape (4, 6)" in lines[0]


def test_a_long_message_is_cut_to_ten_lines():
    lines = tutor.failure_lines(CheckFailed("\n".join(f"line {i}" for i in range(30))))
    assert len(lines) <= tutor.MAX_LINES and "more lines" in lines[-1]


def test_missing_torch_says_how_to_install(shell):
    shell, shown = shell
    shell.run_cell("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')")
    text = "\n".join(shown[0])
    assert "download.pytorch.org/whl/cpu" in text and "Traceback" not in text


def test_learner_errors_name_the_inputs_and_the_learners_function():
    def softmax(x, axis=-1):
        return x / undefined  # noqa: F821

    with pytest.raises(CheckFailed) as caught:
        call(bind(softmax, "softmax"), np.zeros((4, 6)), axis=1)
    text = str(caught.value)
    assert "your softmax raised NameError" in text
    assert "called with: shape (4, 6) float64, axis=1" in text
    assert "(softmax): return x / undefined" in text
    assert "core.py" not in text and "remote.py" not in text
    assert describe_inputs((3,), {"vocab_size": 30}) == "3, vocab_size=30"


def test_a_name_the_notebook_never_defined_says_why():
    """E.g. the cell `from attention_course.attention import softmax` failed in the grader."""
    from attention_course_learner.remote import LocalEndpoint

    with pytest.raises(CheckFailed) as caught:
        call(LocalEndpoint({}).remote("softmax"), np.zeros(3))
    text = str(caught.value)
    assert "`softmax` is not defined: run the cell that defines it" in text
    assert "without the course's reference code" in text and "called with" not in text
