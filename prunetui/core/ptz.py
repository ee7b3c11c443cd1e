"""The .ptz compressed model format, and its loader: this module needs only the standard library, numpy
and torch, and imports nothing of prunetui, so you can copy this one file next to your code:

    from ptz import load_ptz
    state_dict, info = load_ptz("model.ptz")
    model.load_state_dict(state_dict)   # info["prunetui"]: what prunetui recorded (recipe, sizes, ...)

A .ptz file is MAGIC (4 bytes) followed by one LZMA2 stream (Python's `lzma`, FORMAT_RAW, FILTERS): the
entropy coder of the whole file. Inside the stream: a 4-byte little-endian header length, the header
(UTF-8 JSON), then the sections of every tensor, in the header's order, back to back. No pickle: the
file is data only.

Header: {"format": "prunetui.ptz", "version": 1, "tensors": [{"name", "kind", "shape", "dtype",
"sizes": [bytes of each section]}, ...], "metadata": the state_dict's `_metadata` (or null), "extra":
every other entry of the export (prunetui's record, channel stages)}. Tensor kinds and their sections:

- `raw`: the tensor's bytes (little-endian, C order), any dtype (biases, BatchNorm, buffers);
- `sparse`: positions, values (float32 nonzeros);
- `kmeans`: positions, codebook (float32, k <= 256 shared values), indices (uint8, one a nonzero);
- `int8`: positions, scales (float32, one a output channel), values (int8, one a nonzero).

Positions are relative indices (Deep Compression's, Han et al. 2016, section 2): for each nonzero of
the flattened tensor, the count of zeros since the previous one, written as bytes where 255 means "255
more, continued" (a gap of 600 is 255 255 90).
"""

import json
import lzma
import struct

import numpy as np
import torch

MAGIC = b"PTZ\x01"
FORMAT, VERSION = "prunetui.ptz", 1
FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 3, "lp": 0, "pb": 0}]
DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
    "uint8": torch.uint8, "bool": torch.bool,
}  # fmt: skip
CONTINUED = 255


class PtzError(ValueError):
    """A file that is not a .ptz file this loader reads, or a damaged one."""


def is_ptz(head: bytes) -> bool:
    """The first bytes of a file are a .ptz file's."""
    return head[: len(MAGIC)] == MAGIC


def load_ptz(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, info) of the .ptz file at `path`: the exact tensors written (dequantized weights:
    each nonzero its shared value), the state_dict's `_metadata` restored, and `info`, every other entry
    the export held (`info["prunetui"]`: the run's record). Raises PtzError for a damaged file."""
    with open(path, "rb") as file:
        data = file.read()
    if not is_ptz(data):
        raise PtzError(f"{path} is not a .ptz file")
    try:
        stream = lzma.decompress(data[len(MAGIC) :], format=lzma.FORMAT_RAW, filters=_decoder_filters())
        (length,) = struct.unpack_from("<I", stream)
        header = json.loads(stream[4 : 4 + length].decode("utf-8"))
    except (lzma.LZMAError, struct.error, UnicodeDecodeError, ValueError) as error:
        raise PtzError(f"{path} is damaged ({error})") from None
    if header.get("format") != FORMAT or header.get("version", 0) > VERSION:
        raise PtzError(f"{path}: not a {FORMAT} file of version {VERSION} or older")
    state, offset = {}, 4 + length
    for item in header["tensors"]:
        sections = []
        for size in item["sizes"]:
            sections.append(stream[offset : offset + size])
            offset += size
        if offset > len(stream):
            raise PtzError(f"{path} is truncated")
        state[item["name"]] = decode_tensor(item, sections)
    return _with_metadata(state, header.get("metadata")), dict(header.get("extra", {}))


def decode_tensor(item: dict, sections: list[bytes]) -> torch.Tensor:
    """One tensor from its header entry and its sections (see the module's docstring)."""
    shape, kind = tuple(item["shape"]), item["kind"]
    numel = int(np.prod(shape, dtype=np.int64))
    if kind == "raw":
        dtype = DTYPES[item["dtype"]]
        return (
            torch.frombuffer(bytearray(sections[0]), dtype=dtype).reshape(shape).clone()
            if numel
            else torch.zeros(shape, dtype=dtype)
        )
    positions = decode_positions(sections[0], numel)
    if kind == "sparse":
        values = np.frombuffer(sections[1], dtype="<f4")
    elif kind == "kmeans":
        codebook = np.frombuffer(sections[1], dtype="<f4")
        values = codebook[np.frombuffer(sections[2], dtype=np.uint8)]
    elif kind == "int8":
        scales = np.frombuffer(sections[1], dtype="<f4")
        per_weight = np.repeat(scales, numel // max(1, len(scales)))[positions]
        values = (np.frombuffer(sections[2], dtype=np.int8).astype(np.float32) * per_weight).astype(
            np.float32
        )
    else:
        raise PtzError(f"unknown tensor kind {kind!r} for {item['name']}")
    flat = np.zeros(numel, dtype=np.float32)
    flat[positions] = values
    return torch.from_numpy(flat).reshape(shape)


def encode_positions(flat_nonzero: np.ndarray) -> bytes:
    """Relative indices of the nonzeros (ascending flat indices) as bytes, 255 meaning "continued"."""
    gaps = np.diff(np.concatenate([[-1], flat_nonzero.astype(np.int64)])) - 1
    repeats = gaps // CONTINUED
    out = np.full(int(repeats.sum()) + len(gaps), CONTINUED, dtype=np.uint8)
    ends = np.cumsum(repeats + 1) - 1  # where each gap's last byte goes
    out[ends] = (gaps % CONTINUED).astype(np.uint8)
    return out.tobytes()


def decode_positions(data: bytes, numel: int) -> np.ndarray:
    """The flat indices `encode_positions` wrote. PtzError when they leave the tensor."""
    codes = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    last = codes != CONTINUED
    totals = np.cumsum(codes)  # a gap is its bytes' sum: the 255s before it and its last byte
    ends = totals[last]
    gaps = np.diff(np.concatenate([[0], ends]))
    positions = np.cumsum(gaps + 1) - 1
    if len(positions) and (positions[-1] >= numel or not last[-1]):
        raise PtzError("positions beyond the tensor: the file is damaged")
    return positions


def _decoder_filters() -> list[dict]:
    return [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 26, "lc": 3, "lp": 0, "pb": 0}]


def _with_metadata(state: dict, metadata: dict | None) -> dict:
    """`state` carrying `metadata` as state-dict metadata, as nn.Module.state_dict() returns it."""
    if metadata is None:
        return state
    from collections import OrderedDict

    result = OrderedDict(state)
    result._metadata = OrderedDict((key, dict(value)) for key, value in metadata.items())  # type: ignore[attr-defined]
    return result
