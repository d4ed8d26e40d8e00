"""Runs one instance of a Triton-style model.py for Ferry's python backend.

Ferry starts this script as a child process and talks to it over two pipes: fd 3
carries frames from Ferry, fd 4 frames to Ferry, so model.py may print to stdout and
stderr freely (Ferry logs both). A frame is an 8-byte little-endian payload length,
then the payload, whose first byte is its kind:

  Ferry -> runner   I  init: JSON args for initialize() plus "_ferry_model_file"
                    E  execute: a batch of requests
                    F  finalize: call finalize(), answer D, exit
  runner -> Ferry   R  ready: JSON facts (python and numpy versions)
                    X  fatal: a UTF-8 message (initialize failed); the runner exits
                    O  execute results: one response or error per request
                    D  finalize done

Strings are a little-endian length (u8, u16 or u32 as noted) then UTF-8 bytes. A
tensor is name (str16), V2 datatype (str8), rank (u8), rank int64 dims, data length
(u64), data (little-endian; BYTES elements each a u32 length then the bytes).

  E payload: u32 requests; each: u32 inputs, the input tensors, u32 outputs wanted,
             each a str16 name.
  O payload: u32 responses; each: u8 0 then u32 tensors and the tensors, or u8 1
             then the error code (str8) and message (str32).
"""

import importlib.util
import json
import os
import signal
import struct
import sys
import traceback

import triton_python_backend_utils as pb_utils

REQ_FD, RESP_FD = 3, 4


class Conn:
    """Frame I/O over the two protocol pipes."""

    def __init__(self, rfd, wfd):
        self.r = os.fdopen(rfd, "rb", buffering=0)
        self.wfd = wfd

    def read(self):
        """Returns (kind, payload bytearray), or (None, None) when Ferry closed the pipe."""
        head = self._read_exact(8)
        if head is None:
            return None, None
        (n,) = struct.unpack("<Q", head)
        if n == 0:
            raise ValueError("empty frame")
        buf = self._read_exact(n)
        if buf is None:
            raise EOFError("pipe closed inside a frame")
        return chr(buf[0]), buf

    def _read_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.r.readinto(view[got:])
            if not k:
                if got == 0:
                    return None
                raise EOFError("pipe closed inside a frame")
            got += k
        return buf

    def write(self, kind, parts):
        """Writes the frame with writev, so tensor data is not copied into one buffer."""
        size = 1 + sum(len(p) for p in parts)
        bufs = [memoryview(struct.pack("<Qc", size, kind.encode("ascii")))]
        bufs += [memoryview(p).cast("B") for p in parts if len(p)]
        i = 0
        while i < len(bufs):
            k = os.writev(self.wfd, bufs[i:i + 512])  # IOV_MAX is 1024 on Linux
            while k:
                if k >= len(bufs[i]):
                    k -= len(bufs[i])
                    i += 1
                else:
                    bufs[i] = bufs[i][k:]
                    k = 0


def str8(s):
    b = s.encode("utf-8")[:255]
    return struct.pack("<B", len(b)) + b


def str16(s):
    b = s.encode("utf-8")[:65535]
    return struct.pack("<H", len(b)) + b


def str32(s):
    b = s.encode("utf-8")
    return struct.pack("<I", len(b)) + b


class Reader:
    """Walks a payload."""

    def __init__(self, buf, off=1):
        self.buf, self.view, self.off = buf, memoryview(buf), off

    def unpack(self, fmt):
        vals = struct.unpack_from(fmt, self.buf, self.off)
        self.off += struct.calcsize(fmt)
        return vals

    def string(self, fmt):
        (n,) = self.unpack(fmt)
        s = bytes(self.view[self.off:self.off + n]).decode("utf-8")
        self.off += n
        return s

    def tensor(self):
        name = self.string("<H")
        v2 = self.string("<B")
        (rank,) = self.unpack("<B")
        shape = self.unpack("<%dq" % rank) if rank else ()
        (n,) = self.unpack("<Q")
        raw = self.view[self.off:self.off + n]
        self.off += n
        return pb_utils.Tensor._from_wire(name, v2, shape, raw)


def decode_execute(buf):
    r = Reader(buf)
    (nreq,) = r.unpack("<I")
    requests = []
    for _ in range(nreq):
        (nin,) = r.unpack("<I")
        inputs = [r.tensor() for _ in range(nin)]
        (nout,) = r.unpack("<I")
        outputs = [r.string("<H") for _ in range(nout)]
        requests.append(pb_utils.InferenceRequest(inputs=inputs, requested_output_names=outputs))
    return requests


def encode_tensor(t, out_types):
    if not isinstance(t, pb_utils.Tensor):
        raise TypeError("output_tensors must hold pb_utils.Tensor values, got %s" % type(t).__name__)
    v2, shape, raw = pb_utils._encode(t, out_types.get(t.name()))
    head = str16(t.name()) + str8(v2) + struct.pack("<B%dqQ" % len(shape), len(shape), *shape, len(raw))
    return [head, raw]


def describe(exc):
    """One line naming the exception and where in model.py it was raised."""
    if isinstance(exc, SyntaxError):
        return "%s: %s (%s, line %s)" % (type(exc).__name__, exc.msg, os.path.basename(exc.filename or "?"), exc.lineno)
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        text += " (%s:%d in %s)" % (os.path.basename(f.filename), f.lineno, f.name)
    return text


class Runner:
    def __init__(self, conn):
        self.conn = conn
        self.model = None
        self.out_types = {}

    def init(self, payload):
        args = json.loads(bytes(payload[1:]).decode("utf-8"))
        path = args.pop("_ferry_model_file")
        if not args.pop("_ferry_numpy", True):
            pb_utils._np, pb_utils.HAS_NUMPY = None, False
        cfg = json.loads(args.get("model_config", "{}"))
        for out in cfg.get("output", []):
            try:
                self.out_types[out["name"]] = pb_utils._config_to_v2(out.get("data_type", ""))
            except (KeyError, pb_utils.TritonModelException):
                pass
        sys.path.insert(0, os.path.dirname(path))
        spec = importlib.util.spec_from_file_location("model", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["model"] = module
        spec.loader.exec_module(module)
        cls = getattr(module, "TritonPythonModel", None)
        if cls is None:
            raise AttributeError("%s defines no class TritonPythonModel" % os.path.basename(path))
        self.model = cls()
        if hasattr(self.model, "initialize"):
            self.model.initialize(args)

    def call(self, requests):
        """Runs execute(); returns one (tensors, None) or (None, (code, message)) per request.

        An exception fails only the requests that raise it: when execute() raises on a
        batch of several requests, each is run again on its own.
        """
        try:
            responses = self.model.execute(requests)
            if hasattr(responses, "__await__"):
                import asyncio
                responses = asyncio.run(_await(responses))
        except Exception as exc:  # model code: report it, keep serving
            traceback.print_exc()
            if len(requests) > 1:
                sys.stderr.write("[ferry:WARN] execute() raised on a batch of %d requests; "
                                 "running each alone so only the failing ones fail\n" % len(requests))
                return [self.call([r])[0] for r in requests]
            return [(None, ("INTERNAL", "execute() raised " + describe(exc)))]
        if not isinstance(responses, (list, tuple)) or len(responses) != len(requests):
            got = "%d responses" % len(responses) if isinstance(responses, (list, tuple)) else type(responses).__name__
            msg = "execute() must return a list of one InferenceResponse per request: got %s for %d requests" % (got, len(requests))
            return [(None, ("INTERNAL", msg))] * len(requests)
        return [self.response(i, r) for i, r in enumerate(responses)]

    def response(self, i, r):
        if not isinstance(r, pb_utils.InferenceResponse):
            return None, ("INTERNAL", "execute() response %d is a %s, not an InferenceResponse" % (i, type(r).__name__))
        if r.has_error():
            e = r.error()
            if isinstance(e, pb_utils.TritonError):
                return None, (e.code_name(), e.message())
            return None, ("INTERNAL", str(e))
        try:
            return [encode_tensor(t, self.out_types) for t in r.output_tensors()], None
        except Exception as exc:
            return None, ("INTERNAL", "response %d: cannot send output: %s" % (i, describe(exc)))

    def execute(self, payload):
        results = self.call(decode_execute(payload))
        parts = [struct.pack("<I", len(results))]
        for tensors, err in results:
            if err is not None:
                parts += [b"\x01", str8(err[0]), str32(err[1])]
                continue
            parts += [b"\x00", struct.pack("<I", len(tensors))]
            for enc in tensors:
                parts += enc
        self.conn.write("O", parts)

    def finalize(self):
        if self.model is not None and hasattr(self.model, "finalize"):
            try:
                self.model.finalize()
            except Exception:
                traceback.print_exc()
        self.conn.write("D", [])


async def _await(aw):
    return await aw


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ferry stops us with a finalize frame
    for fd in (REQ_FD, RESP_FD):
        os.set_inheritable(fd, False)  # processes model.py starts must not hold our pipes
    conn = Conn(REQ_FD, RESP_FD)
    runner = Runner(conn)
    kind, payload = conn.read()
    if kind != "I":
        return 2
    try:
        runner.init(payload)
    except BaseException as exc:
        traceback.print_exc()
        conn.write("X", [("initialize failed: " + describe(exc)).encode("utf-8")])
        return 1
    info = {"python": sys.version.split()[0], "numpy": getattr(pb_utils._np, "__version__", None)}
    conn.write("R", [json.dumps(info).encode("utf-8")])
    while True:
        kind, payload = conn.read()
        if kind is None:  # Ferry went away
            return 0
        if kind == "E":
            runner.execute(payload)
        elif kind == "F":
            runner.finalize()
            return 0
        else:
            raise ValueError("unknown frame kind %r" % kind)


if __name__ == "__main__":
    sys.exit(main())
