"""The messages between the grader and the process that runs a submission (``sandbox``):
one line of JSON each, holding only data.

Arrays travel as ``.npy`` bytes read back with ``allow_pickle=False``, and tuples, lists,
dicts (with any keys, e.g. BPE's pairs) and Counters keep their types, so the hidden tests
see what the submission returned. Nothing that arrives is ever unpickled or evaluated: a
submission can send the grader wrong data, never code.
"""
import base64
import collections
import io
import json
import math

import numpy as np

#: The largest message either side accepts; a longer one ends the part (it is an attack or
#: a runaway output, not an answer to these inputs).
MAX_MESSAGE_BYTES = 64 * 2 ** 20


class WireError(ValueError):
    """A value that cannot be sent, or a message that is not one the other side sent."""


def _encode(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):   # a miniclip Tensor
        value = value.numpy()
    elif hasattr(value, "get") and hasattr(value, "__cuda_array_interface__"):   # CuPy
        value = value.get()
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise WireError("an array of Python objects (return numbers in an array of floats)")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return {"array": base64.b64encode(buffer.getvalue()).decode("ascii"),
                "scalar": isinstance(value, np.generic)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()],
                "counter": isinstance(value, collections.Counter)}
    raise WireError(f"a {type(value).__name__}, which the grader cannot read (return NumPy "
                    "arrays, numbers, strings, lists, tuples or dicts)")


def _decode(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict) and set(value) == {"array", "scalar"}:
        array = _array(base64.b64decode(value["array"], validate=True))
        return array[()] if value["scalar"] else array
    if isinstance(value, dict) and set(value) == {"tuple"}:
        return tuple(_decode(item) for item in value["tuple"])
    if isinstance(value, dict) and set(value) == {"dict", "counter"}:
        items = dict((_hashable(_decode(k)), _decode(v)) for k, v in value["dict"])
        return collections.Counter(items) if value["counter"] else items
    raise WireError(f"not a value of this protocol: {str(value)[:80]}")


def _array(data):
    """The array of the ``.npy`` bytes ``data``, its header checked against them first:
    ``np.load`` allocates the declared shape before it reads, so a lying header could ask
    the grader for terabytes."""
    stream = io.BytesIO(data)
    try:
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}
        shape, _, dtype = read_header[np.lib.format.read_magic(stream)](stream)
    except (KeyError, ValueError) as error:
        raise WireError(f"an array whose .npy header cannot be read ({error})") from None
    if dtype.hasobject or math.prod(shape) * dtype.itemsize != len(data) - stream.tell():
        raise WireError(f"an array whose header (shape {shape}, {dtype}) does not match its "
                        f"{len(data) - stream.tell()} bytes")
    return np.load(io.BytesIO(data), allow_pickle=False)


def _hashable(key):
    if isinstance(key, (list, dict, np.ndarray)):
        raise WireError("a dict key that is a list, dict or array")
    return key


def dumps(message):
    """One message (a dict of values) as a line of bytes."""
    return json.dumps({key: _encode(value) for key, value in message.items()},
                      allow_nan=True).encode("utf-8") + b"\n"


def loads(line):
    """The message that ``dumps`` made; ``WireError`` for anything else."""
    if len(line) > MAX_MESSAGE_BYTES:
        raise WireError(f"a message of {len(line) / 2 ** 20:.0f} MiB")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as error:
        raise WireError(f"not JSON ({error})") from None
    if not isinstance(message, dict):
        raise WireError("not a message")
    try:
        return {key: _decode(value) for key, value in message.items()}
    except (ValueError, TypeError, RecursionError) as error:
        raise WireError(str(error)) from None
