"""Calling a learner's code through plain-data messages.

Checks never touch a learner's objects directly. They hold a ``RemoteObject`` and
every call or attribute read becomes a message answered by a ``Dispatcher`` that
lives next to the learner's code:

* in class, ``bind(softmax)`` puts the dispatcher in the same process
  (``LocalEndpoint``) — the learner sees exactly the messages the grader sees;
* in the grader, the dispatcher runs in a sandboxed process and the endpoint speaks
  to it over pipes (``autograder.sandbox``).

Either way, what comes back has been through ``wire``: plain data, NumPy arrays and
torch tensors rebuilt by the checking side, or references to objects that stay put.
"""
from __future__ import annotations

import functools
import random
import sys
import traceback

import numpy as np

from attention_course_learner import wire

MAX_ERROR_TEXT = 3000


class StudentCodeError(Exception):
    """The learner's code raised an exception; only its type name and text came back."""

    def __init__(self, label: str, type_name: str, message: str, traceback_text: str = ""):
        super().__init__(f"{label} raised {type_name}: {message}")
        self.label = label
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text


class RemoteObject:
    """A function, class or object of the learner's, reachable only by messages."""

    __slots__ = ("_endpoint", "_label", "_ref")

    def __init__(self, endpoint, label: str, ref: wire.ObjectRef | None = None):
        self._endpoint = endpoint
        self._label = label
        self._ref = ref  # None: the learner's top-level name ``label``

    def _address(self) -> dict:
        return {"target": self} if self._ref else {"name": self._label}

    def __call__(self, *args, **kwargs):
        message = {"op": "call", **self._address(), "args": list(args), "kwargs": kwargs}
        return self._endpoint.request(message, self._label)

    def _call_echoing(self, args: tuple, kwargs: dict):
        message = {"op": "call", **self._address(), "args": list(args),
                   "kwargs": kwargs, "echo": True}
        return self._endpoint.request(message, self._label)

    def __getattr__(self, attr: str):
        if attr.startswith("_"):
            raise AttributeError(attr)
        message = {"op": "getattr", **self._address(), "attr": attr}
        return self._endpoint.request(message, f"{self._label}.{attr}")

    def __repr__(self) -> str:
        return f"<{self._label}>"


class Endpoint:
    """Encodes a request, hands it to ``exchange`` and decodes the answer."""

    def exchange(self, frame: bytes) -> tuple[bytes, int]:
        """Send one request frame; return (answer payload, its JSON length)."""
        raise NotImplementedError

    def remote(self, name: str) -> RemoteObject:
        return RemoteObject(self, name)

    def fresh(self) -> None:
        """Forget every effect of earlier calls: the grader restarts the learner's
        process with its cells run again; in class there is nothing to do."""

    def _reference(self, value):
        if isinstance(value, RemoteObject) and value._endpoint is self and value._ref:
            return {"$ref": value._ref.id}
        raise wire.WireError(f"cannot send an object of type {type(value).__name__}")

    def request(self, message: dict, label: str):
        frame = wire.encode_frame(message, make_ref=self._reference)
        payload, json_size = self.exchange(frame)
        answer = wire.decode_frame(
            payload, json_size,
            make_remote=lambda ref: RemoteObject(self, label if ref.callable else f"{label}(…)", ref),
        )
        if type(answer) is dict and set(answer) == {"ok"}:
            return answer["ok"]
        if type(answer) is dict and set(answer) == {"error"} and _is_error_record(answer["error"]):
            error = answer["error"]
            raise StudentCodeError(label, error["type"], error["message"], error["traceback"])
        raise wire.WireError("malformed answer")


def _is_error_record(error) -> bool:
    return (type(error) is dict and set(error) == {"type", "message", "traceback"}
            and all(type(v) is str and len(v) <= 2 * MAX_ERROR_TEXT for v in error.values()))


class Dispatcher:
    """Answers requests against a namespace; keeps non-plain results as numbered objects."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.objects: dict[int, object] = {}

    def _store(self, value):
        ref = wire.object_ref_for(value, len(self.objects) + 1)
        self.objects[ref.id] = value
        return {"$object": {"id": ref.id, "type": ref.type_name,
                            "callable": ref.callable}}

    def _resolve(self, object_id: int):
        try:
            return self.objects[object_id]
        except KeyError:
            raise wire.WireError(f"no object #{object_id} (it may have been lost in a restart)") from None

    def decode(self, payload: bytes, json_size: int):
        return wire.decode_frame(payload, json_size, resolve_ref=self._resolve)

    def answer(self, payload: bytes, json_size: int) -> bytes:
        try:
            request = self.decode(payload, json_size)
        except wire.WireError as error:
            return error_frame("ProtocolError", str(error))
        return self.respond(request)

    def respond(self, request) -> bytes:
        """Perform a decoded call/getattr request; the answer frame carries result or error."""
        try:
            operation = self._parse(request)
        except wire.WireError as error:
            return error_frame("ProtocolError", str(error))
        try:
            result = operation()
        except BaseException as error:  # noqa: B036 - sys.exit() in learner code is an answer too
            return exception_frame(error)
        try:
            return wire.encode_frame({"ok": result}, make_ref=self._store)
        except BaseException as error:  # noqa: B036 - a hostile result must not stop the loop
            return error_frame("ResultError", "the value returned could not be sent back: "
                                              f"{safe_str(error)}")

    def _parse(self, request):
        if type(request) is not dict or request.get("op") not in ("call", "getattr"):
            raise wire.WireError("unknown request")
        if "name" in request:
            name = request["name"]
            if type(name) is not str:
                raise wire.WireError("malformed name")
            target = self._lookup
            target_args = (name,)
        elif "target" in request:
            target = lambda obj: obj  # noqa: E731
            target_args = (request["target"],)
        else:
            raise wire.WireError("request without a target")
        if request["op"] == "getattr":
            attr = request.get("attr")
            if type(attr) is not str or not attr.isidentifier() or attr.startswith("_"):
                raise wire.WireError("malformed attribute name")
            return lambda: getattr(target(*target_args), attr)
        args, kwargs = request.get("args"), request.get("kwargs")
        echo = request.get("echo", False)
        if type(args) is not list or type(kwargs) is not dict or type(echo) is not bool:
            raise wire.WireError("malformed call")

        def call():
            function = target(*target_args)
            seed_everything()
            result = function(*args, **kwargs)
            # The arguments as the call left them: a check can see in-place changes.
            return (result, args, kwargs) if echo else result

        return call

    def _lookup(self, name: str):
        try:
            return self.namespace[name]
        except KeyError:
            raise NameError(f"name '{name}' is not defined") from None


def seed_everything(seed: int = 0) -> None:
    """Same random numbers before every call, so sampling code gives the same answer twice."""
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def safe_str(error: BaseException) -> str:
    try:
        text = str(error)
    except BaseException:  # noqa: B036 - __str__ is learner code
        text = "<unprintable>"
    return text[:MAX_ERROR_TEXT]


@functools.lru_cache(maxsize=1)
def library_dirs() -> tuple[str, ...]:
    """Folders whose frames are not the learner's: Python's own, installed packages, this one."""
    import os
    import sysconfig

    paths = {sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.add(os.path.dirname(os.path.abspath(__file__)))
    return tuple(os.path.join(p, "") for p in paths if p)


def _cell_name(filename: str) -> str | None:
    """'the cell starting `def softmax(...`' for a notebook cell's frame, else None.

    IPython names a cell's code after a temporary file (ipykernel) or ``<ipython-input-…>``
    and keeps its text in ``linecache``: the first line names the cell as the learner sees it.
    """
    import linecache

    if not (filename.startswith("<") or "ipykernel_" in filename or "ipython-input" in filename):
        return None
    lines = [line.strip() for line in linecache.getlines(filename) if line.strip()]
    first = next((line for line in lines if not line.startswith("#")), lines[0] if lines else "")
    return f"the cell starting `{first[:60]}`" if first else "a notebook cell"


def learner_traceback(error: BaseException, hidden_dirs: tuple[str, ...] = (), limit: int = 3) -> str:
    """The learner's own frames (at most ``limit``, innermost last), cells named by their first
    line; frames of Python, of installed libraries (torch…) and of the course are left out."""
    hidden = tuple(hidden_dirs) + library_dirs()
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename != __file__ and not frame.filename.startswith(hidden)]
    lines = []
    for frame in frames[-limit:]:
        where = _cell_name(frame.filename) or frame.filename.rsplit("/", 1)[-1]
        function = "" if frame.name == "<module>" else f" ({frame.name})"
        lines.append(f"  in {where}, line {frame.lineno}{function}"
                     + (f": {frame.line.strip()}" if frame.line else ""))
    return "\n".join(lines)[-MAX_ERROR_TEXT:]


def exception_frame(error: BaseException, hidden_dirs: tuple[str, ...] = ()) -> bytes:
    """An error answer for an exception raised by learner code.

    The traceback keeps only the learner's frames: none from this file, ``hidden_dirs``,
    Python's standard library or installed packages.
    """
    return error_frame(type(error).__name__, safe_str(error), learner_traceback(error, hidden_dirs))


def error_frame(type_name: str, message: str, traceback_text: str = "") -> bytes:
    record = {"type": type_name[:200], "message": message, "traceback": traceback_text}
    return wire.encode_frame({"error": record})


class LocalEndpoint(Endpoint):
    """Dispatcher in the same process: the learner's own notebook."""

    def __init__(self, namespace: dict):
        self.dispatcher = Dispatcher(namespace)

    def exchange(self, frame: bytes) -> tuple[bytes, int]:
        json_size, _ = wire.check_header(frame[:wire.HEADER.size])
        answer = self.dispatcher.answer(frame[wire.HEADER.size:], json_size)
        answer_json_size, _ = wire.check_header(answer[:wire.HEADER.size])
        return answer[wire.HEADER.size:], answer_json_size


def fresh_learner(*objects) -> None:
    """Calls after this one see the learner's notebook as its cells left it, not what
    earlier calls changed (a memo of inputs seen, a patched module)."""
    endpoints = {id(o._endpoint): o._endpoint for o in objects
                 if isinstance(o, RemoteObject)}
    for endpoint in endpoints.values():
        endpoint.fresh()


def call_echoing_arguments(function: RemoteObject, *args, **kwargs):
    """(result, args, kwargs): the call's result and its arguments as it left them.

    Arguments travel as copies, so this is how a check sees whether the learner's
    code changed an argument in place.
    """
    result, args_after, kwargs_after = function._call_echoing(args, kwargs)
    return result, tuple(args_after), kwargs_after


def relabel(value: RemoteObject, label: str) -> RemoteObject:
    """The same remote object, named in messages as ``label`` (e.g. "EncoderBlock.forward"
    rather than the name of the call that returned it, "EncoderBlock.double")."""
    return RemoteObject(value._endpoint, label, value._ref) if value._ref else value


def bind(value, label: str) -> RemoteObject:
    """The learner's function or class as a RemoteObject (already one in the grader)."""
    if isinstance(value, RemoteObject):
        return value
    return LocalEndpoint({label: value}).remote(label)
