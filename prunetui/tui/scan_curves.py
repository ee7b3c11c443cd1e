"""Sensitivity scan results as they arrive, point by point."""

from dataclasses import dataclass, field

from prunetui.core.sensitivity import ScanResult, highest_safe_sparsity


@dataclass
class ScanCurves:
    base_accuracy: float | None = None
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # layer -> (s, accuracy)

    @classmethod
    def from_result(cls, result: ScanResult) -> "ScanCurves":
        points = {
            layer: list(zip(result.sparsities, accuracies, strict=True))
            for layer, accuracies in result.layers.items()
        }
        return cls(result.base_accuracy, points)

    def add(self, layer: str, sparsity: float, accuracy: float) -> None:
        self.points.setdefault(layer, []).append((sparsity, accuracy))

    def safe_sparsity(self, layer: str) -> float | None:
        """Highest scanned sparsity that keeps the accuracy drop under 1 point (None: not scanned)."""
        if self.base_accuracy is None or layer not in self.points:
            return None
        sparsities, accuracies = zip(*self.points[layer], strict=True)
        return highest_safe_sparsity(sparsities, accuracies, self.base_accuracy)

    def safe_sparsities(self) -> dict[str, float]:
        """The safe sparsity of every layer that has one."""
        safe = {layer: self.safe_sparsity(layer) for layer in self.points}
        return {layer: value for layer, value in safe.items() if value is not None}

    def sparsities(self) -> list[float]:
        return sorted({s for points in self.points.values() for s, _ in points})

    def complete_rows(self, sparsities: list[float]) -> dict[str, list[float]]:
        """Accuracy per sparsity of each layer scanned at all of `sparsities` (a cancelled scan leaves
        its last layer half done)."""
        rows = {}
        for layer, points in self.points.items():
            by_sparsity = dict(points)
            if all(s in by_sparsity for s in sparsities):
                rows[layer] = [by_sparsity[s] for s in sparsities]
        return rows
