"""Sensitivity scan results as they arrive, point by point, and the one threshold that reads them.

The tolerated drop is the one definition of "safe": a point is within it when the layer's accuracy stays
at or above `base - drop` (the floor). By default the drop is the lab's rule (the lower bound
100 - (100 - base) * 1.5, i.e. half the base error); the user can set a fixed number of points instead.
The Safe column, the marks of the numeric view and the line drawn on the curves all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the workbench's first frame (before torch) holds empty curves
    from prunetui.core.sensitivity import ScanResult

# core.sensitivity's DEFAULT_SPARSITIES (the lab's np.arange(0.4, 1.0, 0.1)), written here so that the first
# frame loads no torch (a test keeps them equal)
DEFAULT_GRID = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

LAB_RULE = "lab"


@dataclass(frozen=True)
class Tolerance:
    """How far below the scan's base accuracy a layer may fall: `points`, or the lab's rule when None."""

    points: float | None = None

    def drop(self, base_accuracy: float) -> float:
        if self.points is not None:
            return self.points
        from prunetui.core.sensitivity import lower_bound

        return base_accuracy - lower_bound(base_accuracy)

    def floor(self, base_accuracy: float) -> float:
        return max(0.0, base_accuracy - self.drop(base_accuracy))

    def text(self) -> str:
        """What the user types to get this tolerance back."""
        return LAB_RULE if self.points is None else f"{self.points:g}"

    def describe(self, base_accuracy: float | None) -> str:
        """`tolerated drop 1.00 pt` or `tolerated drop 3.52 pt (lab: 1.5× error)`; before a scan
        `tolerated drop: 1 pt` or `tolerated drop: lab (1.5× error)`."""
        rule = "" if self.points is not None else " (lab: 1.5× error)"
        if base_accuracy is None:
            return (
                f"tolerated drop: {self.text()} pt"
                if self.points is not None
                else "tolerated drop: lab (1.5× error)"
            )
        return f"tolerated drop {self.drop(base_accuracy):.2f} pt{rule}"


LAB_TOLERANCE = Tolerance()


def parse_tolerance(text: str) -> Tolerance:
    """`lab` (the lab's 1.5× error rule) or a number of accuracy points, e.g. `1` or `0.5`."""
    raw = text.strip().lower().removesuffix("pt").removesuffix("points").strip()
    if raw in ("", LAB_RULE):
        return Tolerance()
    try:
        points = float(raw)
    except ValueError:
        raise ValueError(
            f"type 'lab' or a number of accuracy points (e.g. 1.0), got {text.strip()}"
        ) from None
    if not 0.0 <= points <= 100.0:
        raise ValueError(f"the tolerated drop is in accuracy points, 0 to 100, got {points:g}")
    return Tolerance(points)


@dataclass
class ScanCurves:
    base_accuracy: float | None = None
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # layer -> (s, accuracy)
    grid: tuple[float, ...] = ()  # the sparsities the scan measures each layer at (empty: not known)
    # the model state the scan is of (core.model_state.ModelState.version; None: not known) and its label
    of_version: int | None = None
    of_label: str = ""
    images: int | None = None  # evaluation images each point was measured on (None: not known)

    @classmethod
    def from_result(cls, result: ScanResult, version: int | None = None, label: str = "") -> ScanCurves:
        points = {
            layer: list(zip(result.sparsities, accuracies, strict=True))
            for layer, accuracies in result.layers.items()
        }
        return cls(result.base_accuracy, points, tuple(result.sparsities), version, label, result.images)

    def image_points(self) -> float | None:
        """Accuracy points one evaluation image is worth (None: not known)."""
        return 100.0 / self.images if self.images else None

    def drop_below_one_image(self, tolerance: Tolerance) -> bool:
        """The lab's rule gives a drop of less than one image (a model near 100%): nothing but no change at
        all counts as safe. A drop the user set is theirs, whatever it is."""
        one, base = self.image_points(), self.base_accuracy
        return (
            tolerance.points is None and one is not None and base is not None and tolerance.drop(base) < one
        )

    def is_stale(self, version: int | None) -> bool:
        """A scan of another model state than `version` (the model changed since it was made)."""
        return self.of_version is not None and version is not None and self.of_version != version

    def add(self, layer: str, sparsity: float, accuracy: float) -> None:
        self.points.setdefault(layer, []).append((sparsity, accuracy))

    def floor(self, tolerance: Tolerance) -> float | None:
        return None if self.base_accuracy is None else tolerance.floor(self.base_accuracy)

    def safe_sparsity(self, layer: str, tolerance: Tolerance = LAB_TOLERANCE) -> float | None:
        """Highest scanned sparsity whose accuracy stays within the tolerated drop (None: not scanned)."""
        if self.base_accuracy is None or layer not in self.points:
            return None
        sparsities, accuracies = zip(*self.points[layer], strict=True)
        drop = tolerance.drop(self.base_accuracy)
        from prunetui.core.sensitivity import highest_safe_sparsity

        return highest_safe_sparsity(sparsities, accuracies, self.base_accuracy, max_drop=drop + 1e-9)

    def safe_sparsities(self, tolerance: Tolerance = LAB_TOLERANCE) -> dict[str, float]:
        """The safe sparsity of every layer that has one."""
        safe = {layer: self.safe_sparsity(layer, tolerance) for layer in self.points}
        return {layer: value for layer, value in safe.items() if value is not None}

    def sparsities(self) -> list[float]:
        return sorted({s for points in self.points.values() for s, _ in points})

    def partial_layers(self) -> set[str]:
        """Layers measured at fewer sparsities than the grid (the one a scan is on, a cancelled scan's
        last one): their safe sparsity is a lower bound, the sparsities above it are not measured."""
        grid = len(self.grid) or len(self.sparsities())
        return {layer for layer, points in self.points.items() if len({s for s, _ in points}) < grid}

    def safe_labels(self, tolerance: Tolerance = LAB_TOLERANCE) -> dict[str, str]:
        """The Safe column's text of every scanned layer: its safe sparsity (`0.315`), `0.60+` while
        sparsities above those measured are unknown, `<0.40` when none it was measured at is safe."""
        from prunetui.core.events import sparsity_text

        labels, partial = {}, self.partial_layers()
        for layer, safe in self.safe_sparsities(tolerance).items():
            measured = {s for s, _ in self.points[layer]}
            if safe == 0.0 and 0.0 not in measured:
                labels[layer] = "<" + sparsity_text(min(measured))
            else:
                labels[layer] = sparsity_text(safe) + ("+" if layer in partial else "")
        return labels

    def complete_rows(self, sparsities: list[float]) -> dict[str, list[float]]:
        """Accuracy per sparsity of each layer scanned at all of `sparsities` (a cancelled scan leaves
        its last layer half done)."""
        rows = {}
        for layer, points in self.points.items():
            by_sparsity = dict(points)
            if all(s in by_sparsity for s in sparsities):
                rows[layer] = [by_sparsity[s] for s in sparsities]
        return rows
