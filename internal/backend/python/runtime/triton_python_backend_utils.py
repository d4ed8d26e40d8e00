"""Ferry's stand-in for Triton's triton_python_backend_utils (pb_utils).

Ferry's python backend runs model.py in a child process of the system python3. This
module gives model.py the parts of Triton's API that a model without GPU, BLS or
decoupled responses uses: Tensor, InferenceRequest, InferenceResponse, TritonError,
get_input_tensor_by_name, get_output_config_by_name, triton_string_to_numpy, Logger.
It needs only the Python standard library: Tensor.as_numpy() returns a numpy array when
numpy is importable, else an NDArray (a small row-major array with tolist(), shape,
dtype, reshape, astype and element-wise + - * /).
"""

import array
import json
import math
import struct
import sys

try:
    import numpy as _np
except ImportError:  # numpy is optional: NDArray stands in for it
    _np = None

HAS_NUMPY = _np is not None

# V2 datatype -> (struct format character, element size, numpy dtype name).
_V2 = {
    "BOOL": ("?", 1, "bool"),
    "UINT8": ("B", 1, "uint8"),
    "UINT16": ("H", 2, "uint16"),
    "UINT32": ("I", 4, "uint32"),
    "UINT64": ("Q", 8, "uint64"),
    "INT8": ("b", 1, "int8"),
    "INT16": ("h", 2, "int16"),
    "INT32": ("i", 4, "int32"),
    "INT64": ("q", 8, "int64"),
    "FP16": ("e", 2, "float16"),
    "FP32": ("f", 4, "float32"),
    "FP64": ("d", 8, "float64"),
    "BF16": (None, 2, "float32"),  # read as float32 values; neither numpy nor array has bfloat16
    "BYTES": (None, 0, "object"),
}
_NP_TO_V2 = {v[2]: k for k, v in _V2.items() if k not in ("BF16", "BYTES")}
_NP_TO_V2["bool_"] = "BOOL"

_INT_RANGES = {
    "uint8": (0, 8), "uint16": (0, 16), "uint32": (0, 32), "uint64": (0, 64),
    "int8": (1, 8), "int16": (1, 16), "int32": (1, 32), "int64": (1, 64),
}
_FLOATS = ("float16", "float32", "float64")


class TritonModelException(Exception):
    """Raised by pb_utils functions that cannot do what model.py asked."""


class TritonError:
    """An error for one request: put it in InferenceResponse(error=...)."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7

    _NAMES = ("UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG", "UNAVAILABLE",
              "UNSUPPORTED", "ALREADY_EXISTS", "CANCELLED")

    def __init__(self, message, code=INTERNAL):
        self._message = str(message)
        self._code = code

    def message(self):
        return self._message

    def code(self):
        return self._code

    def code_name(self):
        if isinstance(self._code, int) and 0 <= self._code < len(self._NAMES):
            return self._NAMES[self._code]
        return "INTERNAL"

    def __repr__(self):
        return "TritonError(%r, %s)" % (self._message, self.code_name())


class dtype(str):
    """A numpy-like dtype name ("int32", "float32", "object") for NDArray."""

    @property
    def name(self):
        return str(self)

    @property
    def itemsize(self):
        for fmt, size, name in _V2.values():
            if name == self:
                return size
        return 0


def _dims(shape):
    shape = tuple(int(d) for d in shape)
    n = 1
    for d in shape:
        n *= d
    return shape, n


def _wrap(v, dt):
    """Wraps an integer to dt's range, as numpy's fixed-width integers do."""
    signed, bits = _INT_RANGES[dt]
    v &= (1 << bits) - 1
    if signed and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def _promote(a, b):
    if a == b:
        return a
    if a in _FLOATS or b in _FLOATS:
        order = ("float16", "float32", "float64")
        fa = order.index(a) if a in _FLOATS else -1
        fb = order.index(b) if b in _FLOATS else -1
        return order[max(fa, fb)]
    if a in _INT_RANGES and b in _INT_RANGES:
        return a if _INT_RANGES[a][1] >= _INT_RANGES[b][1] else b
    return a


def _cast(v, dt):
    if dt in _INT_RANGES:
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                raise ValueError("cannot convert %r to %s" % (v, dt))
            v = int(v)
        return _wrap(int(v), dt)
    if dt in _FLOATS:
        return float(v)
    if dt == "bool":
        return bool(v)
    return v


class NDArray:
    """A row-major n-dimensional array of Python values, used when numpy is absent.

    It offers the numpy members models use most: shape, dtype, ndim, size, tolist(),
    reshape(), astype(), flatten(), item(), indexing along the first dimension, and
    element-wise + - * / with an array of the same shape or a scalar.
    """

    __slots__ = ("_flat", "shape", "dtype")

    def __init__(self, flat, shape, dt):
        shape, n = _dims(shape)
        flat = list(flat)
        if len(flat) != n:
            raise ValueError("NDArray: %d values do not fill shape %s" % (len(flat), shape))
        self._flat = flat
        self.shape = shape
        self.dtype = dtype(dt)

    @classmethod
    def from_list(cls, data, dt=None):
        """Builds an NDArray from nested lists (or a scalar)."""
        shape, flat = _nested_shape(data)
        if dt is None:
            dt = _infer_dtype(flat)
        return cls([_cast(v, dt) for v in flat], shape, dt)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return len(self._flat)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def _row(self, i):
        if not self.shape:
            raise IndexError("a 0-d array cannot be indexed")
        n = self.shape[0]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("index %d is out of bounds for axis 0 with size %d" % (i, n))
        if len(self.shape) == 1:
            return self._flat[i]
        per = len(self._flat) // n if n else 0
        return NDArray(self._flat[i * per:(i + 1) * per], self.shape[1:], self.dtype)

    def __getitem__(self, i):
        return self._row(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self._row(i)

    def tolist(self):
        if not self.shape:
            return self._flat[0]
        return _nest(self._flat, self.shape)

    def item(self):
        if len(self._flat) != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._flat[0]

    def flatten(self):
        return NDArray(self._flat, (len(self._flat),), self.dtype)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = list(shape)
        if shape.count(-1) > 1:
            raise ValueError("can only specify one unknown dimension")
        if -1 in shape:
            known = 1
            for d in shape:
                if d != -1:
                    known *= d
            if known == 0 or len(self._flat) % known:
                raise ValueError("cannot reshape array of size %d into shape %s" % (len(self._flat), tuple(shape)))
            shape[shape.index(-1)] = len(self._flat) // known
        _, n = _dims(shape)
        if n != len(self._flat):
            raise ValueError("cannot reshape array of size %d into shape %s" % (len(self._flat), tuple(shape)))
        return NDArray(self._flat, shape, self.dtype)

    def astype(self, dt):
        dt = _dtype_name(dt)
        return NDArray([_cast(v, dt) for v in self._flat], self.shape, dt)

    def copy(self):
        return NDArray(self._flat, self.shape, self.dtype)

    def tobytes(self):
        return _pack(_NP_TO_V2.get(self.dtype, "BYTES"), self._flat)

    def _binary(self, other, op, reverse=False, true_div=False):
        if isinstance(other, NDArray):
            if other.shape != self.shape and other.size != 1 and self.size != 1:
                raise ValueError("operands could not be broadcast together with shapes %s %s" % (self.shape, other.shape))
            dt = _promote(self.dtype, other.dtype)
            a, b = self._flat, other._flat
            shape = self.shape if self.size >= other.size else other.shape
        elif isinstance(other, (bool, int, float)):
            dt = self.dtype
            if isinstance(other, float) and dt not in _FLOATS:
                dt = "float64"
            a, b = self._flat, [other]
            shape = self.shape
        else:
            return NotImplemented
        if reverse:
            a, b = b, a
        if true_div and dt not in _FLOATS:
            dt = "float64"
        n = max(len(a), len(b))
        av = a if len(a) == n else a * n
        bv = b if len(b) == n else b * n
        return NDArray([_cast(op(x, y), dt) for x, y in zip(av, bv)], shape, dt)

    def __add__(self, o):
        return self._binary(o, lambda x, y: x + y)

    def __radd__(self, o):
        return self._binary(o, lambda x, y: x + y, reverse=True)

    def __sub__(self, o):
        return self._binary(o, lambda x, y: x - y)

    def __rsub__(self, o):
        return self._binary(o, lambda x, y: x - y, reverse=True)

    def __mul__(self, o):
        return self._binary(o, lambda x, y: x * y)

    def __rmul__(self, o):
        return self._binary(o, lambda x, y: x * y, reverse=True)

    def __truediv__(self, o):
        return self._binary(o, lambda x, y: x / y, true_div=True)

    def __rtruediv__(self, o):
        return self._binary(o, lambda x, y: x / y, reverse=True, true_div=True)

    def __neg__(self):
        return NDArray([_cast(-v, self.dtype) for v in self._flat], self.shape, self.dtype)

    def __repr__(self):
        return "NDArray(%r, dtype=%s)" % (self.tolist(), self.dtype)


def _nest(flat, shape):
    if len(shape) == 1:
        return list(flat)
    per = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * per:(i + 1) * per], shape[1:]) for i in range(shape[0])]


def _nested_shape(data):
    """Returns (shape, flat values) of nested lists/tuples, checking they are regular."""
    if isinstance(data, NDArray):
        return data.shape, list(data._flat)
    if not isinstance(data, (list, tuple)):
        return (), [data]
    if not data:
        return (0,), []
    parts = [_nested_shape(x) for x in data]
    inner = parts[0][0]
    flat = []
    for shape, vals in parts:
        if shape != inner:
            raise ValueError("nested lists are ragged: shapes %s and %s" % (inner, shape))
        flat.extend(vals)
    return (len(data),) + inner, flat


def _infer_dtype(flat):
    if flat and all(isinstance(v, bool) for v in flat):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return "int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        return "float64"
    return "object"


def _dtype_name(dt):
    """Accepts "int32", numpy dtypes and types, NDArray dtypes; returns the name."""
    if isinstance(dt, str):
        name = str(dt)
    elif hasattr(dt, "name") and isinstance(getattr(dt, "name"), str) and not isinstance(dt, type):
        name = dt.name
    elif isinstance(dt, type):
        name = {bool: "bool", int: "int64", float: "float64", bytes: "object", str: "object",
                object: "object"}.get(dt)
        if name is None and _np is not None:
            name = _np.dtype(dt).name
    else:
        name = None
    if name in ("bool_", "bool8"):
        name = "bool"
    if name not in _NP_TO_V2 and name != "object":
        raise TypeError("unsupported dtype %r" % (dt,))
    return name


def triton_string_to_numpy(triton_type):
    """Maps a config data type ("TYPE_FP32") to a numpy dtype, or to its name without numpy."""
    v2 = _config_to_v2(triton_type)
    name = _V2[v2][2]
    if _np is not None:
        return _np.dtype(name).type if name != "object" else _np.object_
    return dtype(name)


def _config_to_v2(triton_type):
    t = str(triton_type)
    if t.startswith("TYPE_"):
        t = t[5:]
    if t == "STRING":
        t = "BYTES"
    if t not in _V2:
        raise TritonModelException("unknown data type %r" % (triton_type,))
    return t


# --- decoding inputs ----------------------------------------------------------------

_NATIVE_LE = sys.byteorder == "little"


def _unpack(v2, buf, count):
    """Decodes count elements of V2 type v2 from little-endian bytes into a list."""
    if v2 == "BYTES":
        out, off, view = [], 0, memoryview(buf)
        while off < len(view):
            (n,) = struct.unpack_from("<I", view, off)
            out.append(bytes(view[off + 4:off + 4 + n]))
            off += 4 + n
        return out
    if v2 == "BF16":
        words = struct.unpack("<%dH" % count, buf)
        return [struct.unpack("<f", struct.pack("<I", w << 16))[0] for w in words]
    fmt, size, _ = _V2[v2]
    if v2 == "BOOL":
        return [b != 0 for b in bytes(buf)]
    if _NATIVE_LE and fmt != "e" and array.array(fmt).itemsize == size:
        a = array.array(fmt)
        a.frombytes(buf)
        return a.tolist()
    return list(struct.unpack("<%d%s" % (count, fmt), buf))


def _pack(v2, flat):
    """Encodes a flat list of values as V2 little-endian bytes."""
    if v2 == "BYTES":
        parts = []
        for v in flat:
            if isinstance(v, str):
                v = v.encode("utf-8")
            elif not isinstance(v, (bytes, bytearray)):
                v = str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(v)))
            parts.append(bytes(v))
        return b"".join(parts)
    if v2 == "BF16":
        out = []
        for v in flat:
            (w,) = struct.unpack("<I", struct.pack("<f", float(v)))
            w = (w + 0x7FFF + ((w >> 16) & 1)) >> 16  # round to nearest even
            out.append(w & 0xFFFF)
        return struct.pack("<%dH" % len(out), *out)
    fmt, size, name = _V2[v2]
    vals = [_cast(v, name) for v in flat]
    if _NATIVE_LE and fmt not in ("e", "?") and array.array(fmt).itemsize == size:
        return array.array(fmt, vals).tobytes()
    return struct.pack("<%d%s" % (len(vals), fmt), *vals)


# --- tensors, requests, responses --------------------------------------------------

class Tensor:
    """A named tensor. Tensor(name, data): data is a numpy array, an NDArray, nested
    lists or a scalar. Lists take the output's data type from the model config."""

    def __init__(self, name, data, dtype=None):
        self._name = str(name)
        self._data = data
        self._v2 = dtype  # an explicit V2 datatype ("FP32"), rarely needed
        self._raw = None  # (v2, shape, bytes) for tensors that arrived in a request

    @classmethod
    def _from_wire(cls, name, v2, shape, raw):
        t = cls(name, None)
        t._raw = (v2, tuple(shape), raw)
        return t

    def name(self):
        return self._name

    def triton_dtype_name(self):
        return self._raw[0] if self._raw else self._v2

    def shape(self):
        if self._raw:
            return list(self._raw[1])
        return list(getattr(self.as_numpy(), "shape", ()))

    def is_cpu(self):
        return True

    def as_numpy(self):
        """The data as a numpy array (or an NDArray when numpy is not importable)."""
        if self._data is None and self._raw is not None:
            self._data = _decode(*self._raw)
        return self._data

    def __repr__(self):
        return "Tensor(%r, %r)" % (self._name, self.as_numpy())


def _decode(v2, shape, raw):
    _, n = _dims(shape)
    if _np is not None and v2 not in ("BYTES", "BF16"):
        return _np.frombuffer(raw, dtype=_np.dtype(_V2[v2][2]).newbyteorder("<"), count=n).reshape(shape)
    flat = _unpack(v2, raw, n)
    if _np is not None:
        arr = _np.empty(n, dtype=object if v2 == "BYTES" else _np.float32)
        arr[:] = flat
        return arr.reshape(shape)
    return NDArray(flat, shape, _V2[v2][2])


def _encode(t, config_type):
    """Returns (v2, shape, bytes) for an output tensor. config_type is the V2 type the
    model config declares for the output, used when the data carries no type."""
    data = t._data
    if t._raw is not None and data is None:
        return t._raw
    v2 = t._v2
    if _np is not None and isinstance(data, (_np.ndarray, _np.generic)):
        data = _np.asarray(data)
        if v2 is None:
            if data.dtype.kind in "OSU":
                v2 = "BYTES"
            else:
                v2 = _NP_TO_V2.get(data.dtype.name)
                if v2 is None:
                    raise TritonModelException("output %r: numpy dtype %s has no V2 datatype" % (t._name, data.dtype))
                if config_type == "BF16" and v2 in ("FP32", "FP64"):
                    v2 = "BF16"
        if v2 in ("BYTES", "BF16"):
            return v2, tuple(data.shape), _pack(v2, data.reshape(-1).tolist())
        want = _np.dtype(_V2[v2][2]).newbyteorder("<")
        return v2, tuple(data.shape), _np.ascontiguousarray(data, dtype=want).tobytes()
    if not isinstance(data, NDArray):  # lists and scalars take the config's type
        v2 = v2 or config_type
        data = NDArray.from_list(data, _V2[v2][2] if v2 else None)
    if v2 is None:
        v2 = "BYTES" if data.dtype == "object" else _NP_TO_V2[data.dtype]
        if config_type == "BF16" and v2 in ("FP32", "FP64"):
            v2 = "BF16"  # BF16 inputs read as float32: send them back as the config says
    return v2, data.shape, _pack(v2, data._flat)


class InferenceRequest:
    """One request of a batch, as execute() receives it. (Building one to call another
    model, Triton's BLS, is not supported by Ferry.)"""

    def __init__(self, inputs=None, requested_output_names=None, model_name=None, **_):
        self._inputs = list(inputs or [])
        self._outputs = list(requested_output_names or [])
        self._model_name = model_name

    def inputs(self):
        return self._inputs

    def requested_output_names(self):
        return self._outputs

    def request_id(self):
        return ""

    def correlation_id(self):
        return 0

    def flags(self):
        return 0

    def parameters(self):
        return "{}"

    def is_cancelled(self):
        return False

    def exec(self, *args, **kwargs):
        raise TritonModelException("Ferry's python backend does not support calling other models (BLS)")

    async_exec = exec


class InferenceResponse:
    """The response to one request: output tensors, or an error."""

    def __init__(self, output_tensors=None, error=None):
        self._outputs = list(output_tensors or [])
        self._error = error

    def output_tensors(self):
        return self._outputs

    def has_error(self):
        return self._error is not None

    def error(self):
        return self._error


def get_input_tensor_by_name(request, name):
    """The input tensor of that name, or None."""
    for t in request.inputs():
        if t.name() == name:
            return t
    return None


def get_output_tensor_by_name(response, name):
    for t in response.output_tensors():
        if t.name() == name:
            return t
    return None


def _config_entry(model_config, kind, name):
    if isinstance(model_config, str):
        model_config = json.loads(model_config)
    for entry in model_config.get(kind, []):
        if entry.get("name") == name:
            return entry
    return {}


def get_input_config_by_name(model_config, name):
    """The config's entry for input name (a dict), or {}."""
    return _config_entry(model_config, "input", name)


def get_output_config_by_name(model_config, name):
    """The config's entry for output name (a dict), or {}."""
    return _config_entry(model_config, "output", name)


def get_response_sender(*args, **kwargs):
    raise TritonModelException("Ferry's python backend does not support decoupled models")


class Logger:
    """Writes to the server log, which records the line with the model's name."""

    @staticmethod
    def _log(level, msg):
        sys.stderr.write("[ferry:%s] %s\n" % (level, msg))
        sys.stderr.flush()

    @staticmethod
    def log(msg, level=None):
        Logger._log("INFO", msg)

    @staticmethod
    def log_info(msg):
        Logger._log("INFO", msg)

    @staticmethod
    def log_warn(msg):
        Logger._log("WARN", msg)

    @staticmethod
    def log_error(msg):
        Logger._log("ERROR", msg)

    @staticmethod
    def log_verbose(msg):
        Logger._log("DEBUG", msg)
