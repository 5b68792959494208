"""A minimal safetensors reader and writer in numpy, independent of entprog's C
code (and of the `safetensors` package, which Debian does not ship), so the
tests read what entprog writes and write what entprog must read.
Format: 8 bytes little-endian header length N, N bytes of JSON, raw data."""
import json
import struct

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"),
          "I32": np.dtype("<i4"), "U8": np.dtype("u1")}


def bf16_to_f32(raw):
    return (raw.astype(np.uint32) << 16).view(np.float32)


def load(path):
    """{name: float32/other numpy array}, metadata dict."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        raw = data[b:en]
        if e["dtype"] == "BF16":
            arr = bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[e["dtype"]])
        out[name] = arr.reshape(e["shape"]).copy()
    return out, meta


def header_and_data(tensors, meta=None, dtypes=None):
    """(header dict, data bytes) for {name: array}; dtypes {name: "F32"/...} overrides the array's own."""
    header, chunks, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, arr in tensors.items():
        dt = (dtypes or {}).get(name, "F32")
        raw = np.ascontiguousarray(arr, dtype=DTYPES[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    return header, b"".join(chunks)


def dump_raw(path, header, data, header_len=None):
    """Writes a header dict and data as they are (header_len: a length that may lie)."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if header_len is None else header_len))
        f.write(text)
        f.write(data)


def save(path, tensors, meta=None):
    dump_raw(path, *header_and_data(tensors, meta))
