"""The steps of "bytes you can ship", once for both front ends: quantize the model as it is (masks kept,
core.quantize), finetune the k-means centroids (core.centroids), write it as a .ptz file
(core.compressed), write an int8 ONNX model (core.onnx_int8), and say what each file weighs on disk
against the dense fp32 file.

Each step says the lab's kind of line (workflow.lines) and returns a result object; the sizes in them
are measured (`os.path.getsize`), never estimated.
"""

import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from prunetui.core.atomic import storage_error, write_atomic
from prunetui.core.centroids import finetune_centroids
from prunetui.core.compressed import CompressedExport, dense_file_bytes
from prunetui.core.compressed import export_compressed as write_ptz
from prunetui.core.events import EpochEnd, Event, Report, ignore
from prunetui.core.export import side_file_path
from prunetui.core.onnx_int8 import (
    CALIBRATION_IMAGES,
    Int8Check,
    LatencyPair,
    check_int8,
    latency_pair,
    quantize_onnx,
)
from prunetui.core.profile import check_layer_names
from prunetui.core.ptz import is_ptz
from prunetui.core.quantize import bits_per_layer, quantize_model
from prunetui.core.recipe import Outputs, Quantization, Recipe
from prunetui.core.session import Session
from prunetui.errors import UserError
from prunetui.workflow import channel_steps, lines

LATENCY_BATCHES = (1, 64)
MAIN_FILES = ("checkpoint", "onnx_int8", "onnx")  # which written file a compression ratio is of, in order


def with_layer_bits(recipe: Recipe, layer_bits: dict[str, int]) -> Recipe:
    """`recipe` quantizing the layers of `layer_bits` (a profile's [bits] table, the TUI's column) at
    those bits: k-means unless the recipe names another kind."""
    if not layer_bits:
        return recipe
    part = recipe.quantization
    return replace(
        recipe, quantization=replace(part, kind=part.kind or "kmeans", layer_bits=dict(layer_bits))
    )


def check_before(session: Session, recipe: Recipe) -> None:
    """What the recipe's quantization and outputs need, refused before any work (UserError): layers of
    its bits that the model lacks, a centroid finetune or an int8 ONNX model without data."""
    part = recipe.quantization
    check_layer_names(part.layer_bits, session.layer_names, "bits: ")
    if session.data is None and (part.epochs or recipe.outputs.onnx_int8):
        what = "a centroid finetune" if part.epochs else "an int8 ONNX model (calibrated on training images)"
        raise UserError(f"{what} needs data: give a data spec (--data)")


def kmeans_recipe(session: Session, epochs: int, lr: float = Quantization.lr) -> Recipe:
    """The TUI's `Q`: k-means at the bits column (Han's where unset), centroids finetuned `epochs`."""
    return session.recipe(quantization=Quantization("kmeans", None, dict(session.layer_bits), epochs, lr))


@dataclass
class QuantizeResult:
    """What a quantization did: kind, bits by layer, the accuracy before it, right after it, and after
    the centroid finetune (None without data, or without a centroid finetune)."""

    kind: str
    bits: dict[str, int]
    accuracy_before: float | None
    accuracy_quantized: float | None
    accuracy_centroids: float | None = None
    epochs: list[EpochEnd] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "bits": self.bits,
            "accuracy_quantized": self.accuracy_quantized,
            "accuracy_centroids": self.accuracy_centroids,
            "epochs": [
                {"epoch": e.epoch, "accuracy": e.accuracy, "best": e.best_accuracy} for e in self.epochs
            ],
        }


def _epoch_lines(say, report: Report) -> Report:
    def heard(event: Event) -> None:
        if isinstance(event, EpochEnd):
            say(f"    {event.line()}")
        report(event)

    return heard


def quantize(
    session: Session, recipe: Recipe, say, report: Report = ignore, cancel: threading.Event | None = None
) -> QuantizeResult | None:
    """Quantize the model as it is by the recipe's quantization part (None when it has none), then
    finetune the centroids when it asks; the accuracy said after each when there is data. The codes are
    kept in `session.quantized` (what a .ptz export writes) and the current run records the figures.
    UserError: a layer of the recipe's bits is not in the model, or a centroid finetune without data."""
    part = recipe.check().quantization
    if not part.active:
        return None
    check_before(session, replace(recipe, outputs=Outputs()))
    bits = bits_per_layer(session.model, part.bits if part.kind == "kmeans" else 8, part.layer_bits)
    say(lines.quantizing(part.kind, bits), "dim")
    before = session.accuracy
    session.quantized = quantize_model(session.model, part.kind, bits)
    session.state.changed()
    session.accuracy = None
    result = QuantizeResult(part.kind, session.quantized.bits(), before, None)
    if session.data is not None:
        result.accuracy_quantized = session.evaluate(report, cancel)
        say(lines.accuracy_quantized(result.accuracy_quantized, bool(part.epochs)))
    if part.epochs:
        say(lines.CENTROID_HEADER)
        data = session.data
        tuned = finetune_centroids(session.model, session.quantized, data.train, data.eval, part.epochs,
                                   part.lr, _epoch_lines(say, report), cancel)  # fmt: skip
        result.accuracy_centroids, result.epochs = tuned.best_accuracy, tuned.epochs
        session.accuracy = tuned.best_accuracy
        session.state.changed()
        say(lines.accuracy_after_centroids(tuned.best_accuracy))
    _record(session, result)
    return result


def _record(session: Session, result: QuantizeResult) -> None:
    run = session.current_run
    if run is None:
        return
    run.quantization = result.as_json()
    session.recorder.ended(run)


def export_compressed(
    session: Session, path: str | Path, profile_name: str, overwrite: bool, say
) -> CompressedExport:
    """Write the model as it is as a .ptz file and say its bytes against the dense fp32 file's."""
    written = write_ptz(session, path, profile_name, overwrite)
    coded = (
        f"{written.coded_layers} layers as k-means or int8 codes"
        if written.coded_layers
        else "float32 nonzeros"
    )
    say(f"Exported {written.path} (.ptz: sparse positions, {coded}, LZMA-coded)")
    say(lines.file_on_disk(str(written.path), written.file_bytes, written.dense_file_bytes))
    return written


@dataclass(frozen=True)
class Int8Export:
    path: Path
    check: Int8Check
    latency: list[LatencyPair]

    def as_json(self) -> dict:
        check = self.check
        return {
            "path": str(self.path), "images": check.images, "agreement": check.agreement,
            "max_difference": check.max_difference, "accuracy_int8": check.accuracy_int8,
            "accuracy_fp32": check.accuracy_fp32, "accuracy_pytorch": check.accuracy_pytorch,
            "latency": [pair.as_dict() for pair in self.latency],
        }  # fmt: skip


def export_int8(
    session: Session, path: str | Path, overwrite: bool, say, fp32_path: str | Path | None = None,
    batches: tuple[int, ...] = LATENCY_BATCHES,
) -> Int8Export:  # fmt: skip
    """Write the model as it is as an int8 ONNX model calibrated on training images, checked against
    PyTorch on the evaluation images, timed against the fp32 ONNX model (`fp32_path`, or one exported
    to a temp folder) at each of `batches`. UserError: no data, `path` exists and not `overwrite`, the
    export or the check fails (nothing written)."""
    path = Path(path)
    if session.data is None:
        raise UserError("an int8 ONNX model is calibrated on training images: give a data spec (--data)")
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists (use --force to replace it)")
    with tempfile.TemporaryDirectory(prefix="prunetui-int8-") as folder:
        fp32 = Path(fp32_path) if fp32_path else Path(folder) / "fp32.onnx"
        if not fp32_path:
            channel_steps.export_onnx(session, fp32, True, lambda *_: None)
        staged = quantize_onnx(fp32, calibration_images(session), Path(folder) / "int8.onnx")
        check = check_int8(staged, fp32, session.model, session.data.eval)
        example = session.example_input().cpu()
        latency = [latency_pair(fp32, staged, example, batch) for batch in batches]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda f: f.write(staged.read_bytes()), binary=True)
        except OSError as error:
            raise storage_error(error, "an earlier file there is unchanged") from None
    written = Int8Export(path, check, latency)
    if session.current_run is not None:
        session.current_run.onnx_int8 = written.as_json()
    for line, style in int8_lines(written):
        say(line, style)
    return written


def int8_lines(written: Int8Export) -> list[tuple[str, str]]:
    check = written.check
    said = [
        (f"Exported {written.path} (ONNX, int8 weights per channel and int8 activations, calibrated on "
         f"{CALIBRATION_IMAGES} training images)", ""),
        (f"int8 ONNX accuracy={check.accuracy_int8:.2f}%, fp32 ONNX {check.accuracy_fp32:.2f}%, PyTorch "
         f"{check.accuracy_pytorch:.2f}% on {check.images} images; top-1 agrees with PyTorch on "
         f"{check.agreement:.2f}% (largest logit difference {check.max_difference:.3g})", ""),
    ]  # fmt: skip
    for pair in written.latency:
        verdict = {"faster": "", "same": " (no difference outside the spread)",
                   "slower": ": int8 is SLOWER than fp32 on this CPU"}[pair.verdict]  # fmt: skip
        low, high = min(pair.ratios), max(pair.ratios)
        said.append((
            f"Latency at batch {pair.batch}: int8 {pair.int8_ms:.3f} ms vs fp32 {pair.fp32_ms:.3f} ms = "
            f"{pair.speedup:.2f}x (spread {low:.2f}-{high:.2f}x, {pair.threads} threads, ABBA){verdict}",
            "yellow" if pair.verdict == "slower" else "dim",
        ))  # fmt: skip
    return said


def calibration_images(session: Session):
    """The first CALIBRATION_IMAGES training images as the train loader batches them (its transforms)."""
    from torch.utils.data import default_collate

    loader = session.data.train
    dataset = loader.dataset
    items = [dataset[i] for i in range(min(CALIBRATION_IMAGES, len(dataset)))]
    return (getattr(loader, "collate_fn", None) or default_collate)(items)[0]


def files_written(written: dict[str, str]) -> list[str]:
    """Every file behind `written` ({key: path} of write_outputs), the main model file first (MAIN_FILES'
    order): the model files, a checkpoint's side profile (core.export; a .ptz file has none) and an ONNX
    model's external data file."""
    files = []
    for key, path in sorted(written.items(), key=lambda item: MAIN_FILES.index(item[0])):
        files.append(path)
        extra = {"checkpoint": str(side_file_path(Path(path))), "onnx": f"{path}.data"}.get(key)
        if extra and os.path.isfile(extra) and not (key == "checkpoint" and _is_ptz_file(path)):
            files.append(extra)
    return files


def _is_ptz_file(path: str) -> bool:
    with open(path, "rb") as file:
        return is_ptz(file.read(8))


def file_figures(session: Session, written: dict[str, str]) -> dict:
    """The JSON keys of what a run wrote: `bytes_on_disk` {path: bytes} (every file, os.path.getsize),
    `dense_file_bytes` (torch.save of the dense fp32 state_dict), `compression_ratio` (dense file / the
    model file: the checkpoint, else the int8 ONNX, else the ONNX file; None when nothing was written)
    and `lab_compression_ratio` (dense file / the lab's size, nonzeros x 32 bit)."""
    dense = dense_file_bytes(session.state)
    files = {path: os.path.getsize(path) for path in files_written(written)}
    main = next((written[key] for key in MAIN_FILES if key in written), None)
    lab_bytes = session.current_size() * 2**20
    return {
        "bytes_on_disk": files,
        "dense_file_bytes": dense,
        "compression_ratio": dense / files[main] if main else None,
        "lab_compression_ratio": dense / lab_bytes if lab_bytes else None,
    }


def run_figures(run) -> dict:
    """The file figures a run record keeps (core.runs.RunRecord), as `file_figures` gives them."""
    dense, files = run.dense_file_bytes, run.bytes_on_disk
    weights = {key: path for key, path in run.weights.items()}
    main = next((weights[k] for k in MAIN_FILES if k in weights), None)
    size = next((b for p, b in files.items() if main and Path(p).resolve() == Path(main)), None)
    quantization = run.quantization or {}
    return {
        "bytes_on_disk": files,
        "dense_file_bytes": dense,
        "compression_ratio": dense / size if dense and size else None,
        "accuracy_quantized": quantization.get("accuracy_quantized"),
        "accuracy_centroids": quantization.get("accuracy_centroids"),
        "quantization": quantization or None,
        "onnx_int8": run.onnx_int8,
    }


def prune_json(session: Session, quantized: QuantizeResult | None, written: dict[str, str]) -> dict:
    """`prune --json`'s keys of this module: accuracy_quantized, accuracy_centroids, quantization,
    onnx_int8 and the file figures (`file_figures`)."""
    run = session.current_run
    return {
        "accuracy_quantized": quantized.accuracy_quantized if quantized else None,
        "accuracy_centroids": quantized.accuracy_centroids if quantized else None,
        "quantization": quantized.as_json() if quantized else None,
        "onnx_int8": run.onnx_int8 if run is not None and "onnx_int8" in written else None,
        **file_figures(session, written),
    }


def record_files(session: Session, written: dict[str, str], say) -> dict:
    """The measured files in the current run (its Runs tab row, `runs --json`) and the lab's line."""
    figures = file_figures(session, written)
    run = session.current_run
    if run is not None:
        run.bytes_on_disk, run.dense_file_bytes = figures["bytes_on_disk"], figures["dense_file_bytes"]
    say(lines.lab_size_vs_file(session.current_size(), figures["dense_file_bytes"]), "dim")
    return figures


def export_by_suffix(session: Session, path: str | Path, profile_name: str, overwrite: bool, say) -> dict:
    """The TUI's export (`w`), the format by the name: `.ptz` compressed, `.int8.onnx` int8 ONNX, `.onnx`
    ONNX, else the checkpoint; the run records the file and its bytes. Returns `file_figures`."""
    name, key = str(path), "checkpoint"
    if name.endswith(".ptz"):
        export_compressed(session, path, profile_name, overwrite, say)
    elif name.endswith(".int8.onnx"):
        export_int8(session, path, overwrite, say)
        key = "onnx_int8"
    elif name.endswith(".onnx"):
        channel_steps.export_onnx(session, path, overwrite, say)
        key = "onnx"
    else:
        from prunetui.workflow.steps import export  # steps imports this module

        export(session, path, profile_name, overwrite, say)
    written = {key: name}
    figures = record_files(session, written, say)
    run = session.current_run
    if run is not None:
        run.weights = {**run.weights, key: str(Path(name).resolve())}
        session.recorder.save(run)
    return figures
