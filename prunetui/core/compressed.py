"""Write a model as a .ptz file (core.ptz: the format and its loader) and measure it on disk.

The prunable tensors are coded as Deep Compression codes them (Han et al. 2016): the positions of the
nonzeros as relative indices, then the k-means codebook and one index a nonzero (core.quantize's codes),
or per-channel int8 values and scales, or, for a tensor that was not quantized, its float32 nonzeros;
every other tensor (biases, BatchNorm, buffers) as it is. Everything is then coded by LZMA2 (Python's
`lzma`, the standard library's entropy coder: a range coder over an adaptive model, where Han used
Huffman codes). The file holds what the checkpoint export holds (core.export.checkpoint_dict: the
state_dict, the run's record, channel stages), without pickles.

Sizes are measured, never estimated: `dense_file_bytes` is the length of `torch.save` of the dense fp32
state_dict of the model as opened (what a user ships without prunetui), and a written file's bytes are
`os.path.getsize` of it.
"""

import json
import lzma
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prunetui.core.atomic import storage_error, write_all
from prunetui.core.export import checkpoint_dict, with_metadata
from prunetui.core.model_state import ModelState
from prunetui.core.ptz import DTYPES, FILTERS, FORMAT, MAGIC, VERSION, encode_positions
from prunetui.core.quantize import Int8Channels, LayerCode, SharedWeights
from prunetui.core.session import Session
from prunetui.errors import UserError

DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class CompressedExport:
    path: Path
    file_bytes: int  # os.path.getsize of the file written
    dense_file_bytes: int  # torch.save of the dense fp32 state_dict
    coded_layers: int  # prunable tensors written as quantization codes

    @property
    def ratio(self) -> float:
        return self.dense_file_bytes / self.file_bytes


def dense_file_bytes(state: ModelState) -> int:
    """Bytes on disk of `torch.save(model.state_dict())` of the model as opened, in float32 (the module
    versions of its state-dict metadata included), as `dense.pt`: written to a temp file and measured
    (torch.save lays out a file otherwise than a memory buffer), once per session."""

    def measure() -> int:
        with tempfile.TemporaryDirectory(prefix="prunetui-dense-") as folder:
            path = os.path.join(folder, "dense.pt")
            dense = {key: _fp32(value) for key, value in state.opened.items()}
            torch.save(with_metadata(dense, state.base.state_dict()), path)
            return os.path.getsize(path)

    return int(state.memo(("dense_file_bytes",), measure, of_opened=True))


def _fp32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor


def encode_tensor(name: str, tensor: torch.Tensor, code: LayerCode | None) -> tuple[dict, list[bytes]]:
    """(header entry, sections) of one tensor (core.ptz's kinds): a code's kind when `code` gives it,
    `sparse` for another float32 tensor of dim > 1, else `raw`."""
    tensor = tensor.detach().cpu().contiguous()
    entry = {"name": name, "shape": list(tensor.shape), "dtype": DTYPE_NAMES[tensor.dtype]}
    if code is not None or (tensor.dim() > 1 and tensor.dtype == torch.float32):
        mask = code.mask.cpu() if code is not None else tensor != 0
        positions = encode_positions(np.flatnonzero(mask.reshape(-1).numpy()))
        if isinstance(code, SharedWeights):
            sections = [positions, _le(code.codebook.float()), code.indices.cpu().numpy().tobytes()]
        elif isinstance(code, Int8Channels):
            sections = [positions, _le(code.scales.float()), code.values.cpu().numpy().tobytes()]
        else:
            sections = [positions, _le(tensor[mask])]
        kind = code.kind if code is not None else "sparse"
    else:
        sections, kind = (
            [tensor.reshape(-1).view(torch.uint8).numpy().tobytes()],
            "raw",
        )  # any dtype, bf16 too
    return entry | {"kind": kind, "sizes": [len(s) for s in sections]}, sections


def _le(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().float().numpy().astype("<f4").tobytes()


def ptz_bytes(export: Mapping, codes: Mapping[str, LayerCode]) -> bytes:
    """The .ptz file of `export` (a checkpoint dict: `state_dict` + plain entries) with `codes` for the
    tensors they code."""
    state = export["state_dict"]
    entries, payload = [], []
    for name, tensor in state.items():
        entry, sections = encode_tensor(name, tensor, codes.get(name))
        entries.append(entry)
        payload += sections
    metadata = getattr(state, "_metadata", None)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "tensors": entries,
        "metadata": {k: dict(v) for k, v in metadata.items()} if metadata is not None else None,
        "extra": {key: value for key, value in export.items() if key != "state_dict"},
    }
    text = json.dumps(header, separators=(",", ":"), default=_plain).encode("utf-8")
    stream = b"".join([struct.pack("<I", len(text)), text, *payload])
    return MAGIC + lzma.compress(stream, format=lzma.FORMAT_RAW, filters=FILTERS)


def _plain(value: object) -> object:
    """JSON for the few non-JSON values a record holds (tuples are lists already; numpy numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} in a .ptz header")


def export_compressed(
    session: Session, path: str | Path, profile_name: str = "custom", overwrite: bool = False
) -> CompressedExport:
    """Write the model as it is to `path` as a .ptz file, atomically: its quantization codes when the
    session's `quantized` still describes the weights in hand (else the float32 nonzeros). Raises
    UserError: `path` exists and not `overwrite`; the write failed (the file as it was)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists (choose another name or allow overwriting)")
    export = checkpoint_dict(session, profile_name)
    quantized = getattr(session, "quantized", None)
    codes = quantized.codes if quantized is not None and quantized.holds(session.model) else {}
    if quantized is not None:
        export["prunetui"]["quantization"] = {"kind": quantized.kind, "bits": quantized.bits()}
    data = ptz_bytes(export, codes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_all([(path, lambda f: f.write(data), True)])
    except OSError as error:
        raise storage_error(error, f"{path.name} is as it was") from None
    return CompressedExport(path, os.path.getsize(path), dense_file_bytes(session.state), len(codes))
