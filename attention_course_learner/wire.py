"""Plain-data messages between the grader and a submission's process.

A message is one frame: an 8-byte header (JSON length, binary length), a UTF-8 JSON
document and the raw bytes of any arrays it carries. Nothing is ever unpickled: the
decoder builds only None, bool, int, float, str, list, tuple, dict-with-str-keys,
NumPy arrays / torch tensors of a few plain dtypes, and references to objects that
stay on the other side. Every frame is checked against size and shape limits before
anything is allocated, so a hostile peer can send garbage but never code.
"""
from __future__ import annotations

import json
import math
import struct
import sys
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct(">II")
MAX_JSON_BYTES = 4 << 20
MAX_BLOB_BYTES = 256 << 20
MAX_DEPTH = 32
MAX_NODES = 200_000
MAX_NDIM = 16
ALLOWED_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64"]
)


class WireError(ValueError):
    """A frame or value that breaks the message schema."""


@dataclass(frozen=True)
class ObjectRef:
    """An object that lives in the other process, known only by an id and its type."""

    id: int
    type_name: str  # for messages only: the learner's side reports it
    callable: bool


def _torch_if_loaded():
    # Never import torch just to encode NumPy data: a NumPy-only sandbox starts faster.
    torch = sys.modules.get("torch")
    # Another thread may be importing it: a half-made module has no Tensor yet.
    return torch if torch is not None and hasattr(torch, "Tensor") else None


def _qualified_name(cls) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')}"


class Encoder:
    """Turns a value into a JSON-able tree plus blobs.

    ``make_ref`` returns the tree for a value that is not plain data: the learner's
    side stores the object and describes it ({"$object": ...}); the checking side
    sends back references to such objects ({"$ref": id}) and refuses anything else.
    """

    def __init__(self, make_ref):
        self.make_ref = make_ref
        self.blobs: list[bytes] = []
        self.blob_size = 0
        self.nodes = 0

    def encode(self, value, depth: int = 0):
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise WireError("value is nested too deeply or is too large")
        if value is None or type(value) in (bool, str):
            return value
        if type(value) is int:
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, np.generic) and not isinstance(value, np.object_):
            return self.encode(value.item(), depth + 1)
        if isinstance(value, np.ndarray):
            return self._array(value, "numpy")
        torch = _torch_if_loaded()
        if torch is not None and isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            return self._array(tensor.contiguous().numpy(), "torch")
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(item, depth + 1) for item in tuple.__iter__(value)]}
        if isinstance(value, list):
            return [self.encode(item, depth + 1) for item in list.__iter__(value)]
        if type(value) is dict:
            items = []
            for key, item in dict.items(value):
                if type(key) is not str:
                    raise WireError("dictionary keys must be strings")
                items.append([key, self.encode(item, depth + 1)])
            return {"$dict": items}
        return self.make_ref(value)

    def _array(self, array: np.ndarray, lib: str):
        array = np.ascontiguousarray(np.asarray(array))
        dtype = array.dtype.name
        if dtype not in ALLOWED_DTYPES:
            raise WireError(f"arrays of dtype {dtype} cannot be sent; use a numeric dtype")
        data = array.tobytes()
        if self.blob_size + len(data) > MAX_BLOB_BYTES:
            raise WireError("arrays are too large to send")
        spec = {"lib": lib, "dtype": dtype, "shape": list(array.shape),
                "offset": self.blob_size, "nbytes": len(data)}
        self.blobs.append(data)
        self.blob_size += len(data)
        return {"$array": spec}


def refuse_objects(value):
    raise WireError(f"cannot send an object of type {type(value).__name__}")


def encode_frame(message, make_ref=refuse_objects) -> bytes:
    encoder = Encoder(make_ref)
    tree = encoder.encode(message)
    text = json.dumps(tree, allow_nan=False, separators=(",", ":")).encode()
    if len(text) > MAX_JSON_BYTES:
        raise WireError("message is too large")
    return HEADER.pack(len(text), encoder.blob_size) + text + b"".join(encoder.blobs)


def check_header(header: bytes, max_blob: int = MAX_BLOB_BYTES) -> tuple[int, int]:
    json_size, blob_size = HEADER.unpack(header)
    if json_size > MAX_JSON_BYTES or blob_size > max_blob:
        raise WireError(f"frame too large ({json_size} + {blob_size} bytes)")
    return json_size, blob_size


class Decoder:
    """Rebuilds a value from JSON + blob, accepting only the schema above.

    ``resolve_ref(id)`` maps {"$ref": id} to a local object (submission side);
    ``make_remote(ObjectRef)`` wraps {"$object": ...} (grader side). Either may be
    None, which makes that tag invalid.
    """

    def __init__(self, blob: bytes, resolve_ref=None, make_remote=None):
        self.blob = memoryview(blob)
        self.resolve_ref = resolve_ref
        self.make_remote = make_remote
        self.nodes = 0

    def decode(self, tree, depth: int = 0):
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise WireError("value is nested too deeply or is too large")
        if tree is None or type(tree) in (bool, int, float, str):
            return tree
        if type(tree) is list:
            return [self.decode(item, depth + 1) for item in tree]
        if type(tree) is not dict or len(tree) != 1:
            raise WireError("malformed value")
        (tag, body), = tree.items()
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise WireError("malformed float")
            return float(body)
        if tag == "$tuple" and type(body) is list:
            return tuple(self.decode(item, depth + 1) for item in body)
        if tag == "$dict" and type(body) is list:
            result = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                    raise WireError("malformed dictionary")
                result[pair[0]] = self.decode(pair[1], depth + 1)
            return result
        if tag == "$array" and type(body) is dict:
            return self._array(body)
        if tag == "$ref" and type(body) is int and self.resolve_ref is not None:
            return self.resolve_ref(body)
        if tag == "$object" and type(body) is dict and self.make_remote is not None:
            return self.make_remote(_object_ref(body))
        raise WireError(f"unexpected value tag {tag!r}")

    def _array(self, spec: dict):
        if set(spec) != {"lib", "dtype", "shape", "offset", "nbytes"}:
            raise WireError("malformed array")
        lib, dtype, shape = spec["lib"], spec["dtype"], spec["shape"]
        offset, nbytes = spec["offset"], spec["nbytes"]
        if lib not in ("numpy", "torch") or dtype not in ALLOWED_DTYPES:
            raise WireError("array of an unsupported kind")
        if (type(shape) is not list or len(shape) > MAX_NDIM
                or any(type(n) is not int or n < 0 for n in shape)):
            raise WireError("malformed array shape")
        if type(offset) is not int or type(nbytes) is not int or offset < 0:
            raise WireError("malformed array extent")
        itemsize = np.dtype(dtype).itemsize
        if math.prod(shape) * itemsize != nbytes or offset + nbytes > len(self.blob):
            raise WireError("array shape does not match its data")
        array = np.frombuffer(self.blob[offset:offset + nbytes], dtype=dtype).reshape(shape).copy()
        if lib == "torch":
            import torch

            return torch.from_numpy(array)
        return array


def _object_ref(body: dict) -> ObjectRef:
    if set(body) != {"id", "type", "callable"}:
        raise WireError("malformed object reference")
    if (type(body["id"]) is not int or type(body["type"]) is not str
            or type(body["callable"]) is not bool or len(body["type"]) > 300):
        raise WireError("malformed object reference")
    return ObjectRef(body["id"], body["type"], body["callable"])


def decode_frame(payload: bytes, json_size: int, resolve_ref=None, make_remote=None):
    """Decode a frame body (everything after the header)."""
    try:
        tree = json.loads(bytes(payload[:json_size]).decode("utf-8"))
    except (ValueError, RecursionError) as error:  # includes JSON and UTF-8 errors
        raise WireError(f"malformed JSON: {error}") from None
    return Decoder(payload[json_size:], resolve_ref, make_remote).decode(tree)


def object_ref_for(value, object_id: int) -> ObjectRef:
    return ObjectRef(object_id, _qualified_name(type(value)), callable(value))
