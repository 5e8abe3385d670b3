"""The plain-data protocol between the grader and a submission: what it accepts and refuses."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from attention_course_learner import wire
from attention_course.checks.core import CheckFailed, call
from attention_course_learner.remote import (
    LocalEndpoint, StudentCodeError, bind, call_echoing_arguments,
)


def roundtrip(value):
    frame = wire.encode_frame(value)
    json_size, _ = wire.check_header(frame[:wire.HEADER.size])
    return wire.decode_frame(frame[wire.HEADER.size:], json_size)


def raw_frame(tree, blob=b""):
    text = json.dumps(tree).encode()
    return wire.HEADER.pack(len(text), len(blob)) + text + blob


def decode_raw(frame):
    json_size, _ = wire.check_header(frame[:wire.HEADER.size])
    return wire.decode_frame(frame[wire.HEADER.size:], json_size)


def test_plain_values_survive_a_roundtrip():
    value = {"a": [1, 2.5, None, True, "x"], "t": (1, (2, 3)), "inf": float("inf")}
    assert roundtrip(value) == value


def test_arrays_keep_dtype_shape_and_kind():
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)[:, ::2]  # non-contiguous
    tensor = torch.arange(6, dtype=torch.float64).reshape(3, 2).T
    back_array, back_tensor = roundtrip((array, tensor))
    assert isinstance(back_array, np.ndarray) and back_array.dtype == np.float32
    np.testing.assert_array_equal(back_array, array)
    assert isinstance(back_tensor, torch.Tensor) and back_tensor.dtype == torch.float64
    assert torch.equal(back_tensor, tensor)


def test_nan_survives_and_bool_arrays_work():
    back = roundtrip(np.array([np.nan, 1.0]))
    assert np.isnan(back[0]) and back[1] == 1.0
    assert roundtrip(np.tril(np.ones((3, 3), bool))).dtype == bool


@pytest.mark.parametrize("tree, blob", [
    ({"$array": {"lib": "numpy", "dtype": "float64", "shape": [10], "offset": 0, "nbytes": 80}}, b"\0" * 8),
    ({"$array": {"lib": "numpy", "dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}}, b"\0" * 8),
    ({"$array": {"lib": "numpy", "dtype": "float64", "shape": [-1], "offset": 0, "nbytes": 8}}, b"\0" * 8),
    ({"$array": {"lib": "pickle", "dtype": "float64", "shape": [1], "offset": 0, "nbytes": 8}}, b"\0" * 8),
    ({"$array": {"lib": "numpy", "dtype": "float64", "shape": [1], "offset": -8, "nbytes": 8}}, b"\0" * 8),
    ({"$object": {"id": 1, "type": "x", "bases": [], "callable": True}}, b""),
    ({"$ref": 1}, b""),
    ({"$float": "1e999999"}, b""),
    ({"$dict": [[1, 2]]}, b""),
    ({"unknown": 1}, b""),
    ({"a": 1, "b": 2}, b""),
])
def test_malformed_values_are_refused(tree, blob):
    with pytest.raises(wire.WireError):
        decode_raw(raw_frame(tree, blob))


def test_pickles_and_garbage_are_refused():
    payload = pickle.dumps(object())
    with pytest.raises(wire.WireError):
        wire.decode_frame(payload, len(payload))


def test_deep_nesting_and_huge_frames_are_refused():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(wire.WireError):
        wire.decode_frame(deep.encode(), len(deep))
    with pytest.raises(wire.WireError):
        wire.check_header(wire.HEADER.pack(wire.MAX_JSON_BYTES + 1, 0))
    with pytest.raises(wire.WireError):
        wire.check_header(wire.HEADER.pack(10, 2**31), max_blob=1 << 20)


def test_objects_stay_behind_as_references():
    class Counter:
        def __init__(self):
            self.count = 0

        def bump(self, by):
            self.count += by
            return self

    make = bind(Counter, "Counter")
    counter = make()
    assert counter._ref.type_name.endswith("Counter")  # for messages; decides nothing
    counter.bump(2).bump(3)
    assert counter.count == 5


def test_a_call_can_bring_back_its_arguments_as_it_left_them():
    """How a check sees an in-place change: arguments travel as copies."""
    def fill(x, value=0.0):
        x[0] = value
        return x.sum()

    data = np.arange(3.0)
    result, args, kwargs = call_echoing_arguments(bind(fill, "fill"), data, value=7.0)
    assert result == 10.0 and kwargs == {"value": 7.0}
    assert args[0].tolist() == [7.0, 1.0, 2.0]
    assert data.tolist() == [0.0, 1.0, 2.0]  # the checking side's copy is untouched


def test_learner_exceptions_come_back_as_text_only():
    def broken(x):
        raise ZeroDivisionError("nope")

    with pytest.raises(StudentCodeError) as caught:
        bind(broken, "broken")(1)
    assert caught.value.type_name == "ZeroDivisionError" and "nope" in caught.value.message
    assert "broken" in caught.value.traceback_text
    with pytest.raises(CheckFailed, match="broken raised ZeroDivisionError"):
        call(bind(broken, "broken"), 1)


def test_sys_exit_in_learner_code_is_an_answer():
    def leave():
        raise SystemExit(3)

    with pytest.raises(StudentCodeError, match="SystemExit"):
        bind(leave, "leave")()


def test_hostile_return_values_become_errors_not_crashes():
    class Evil:
        def __str__(self):
            raise RuntimeError("no")

    def returns_object_array():
        return np.array([Evil()], dtype=object)

    with pytest.raises(StudentCodeError) as caught:
        bind(returns_object_array, "f")()
    assert caught.value.type_name == "ResultError"


def test_subclasses_arrive_as_plain_types():
    class Lying(np.ndarray):
        def __eq__(self, other):
            return True

    class LyingFloat(float):
        def __eq__(self, other):
            return True

    result = bind(lambda: (np.zeros(3).view(Lying), torch.ones(2).as_subclass(torch.nn.Parameter)),
                  "f")()
    assert type(result[0]) is np.ndarray and type(result[1]) is torch.Tensor
    assert type(bind(lambda: LyingFloat(1.0), "g")()) is not LyingFloat


def test_only_known_names_are_reachable():
    endpoint = LocalEndpoint({"f": len})
    with pytest.raises(StudentCodeError, match="NameError"):
        endpoint.remote("g")()
    with pytest.raises(AttributeError):
        endpoint.remote("f")._private  # noqa: B018 - underscore names never travel
    with pytest.raises(StudentCodeError, match="ProtocolError"):
        endpoint.request({"op": "getattr", "name": "f", "attr": "__globals__"}, "f")
