"""Sensitivity scan results as they arrive, point by point."""

from dataclasses import dataclass, field

from prunetui.core.sensitivity import highest_safe_sparsity


@dataclass
class ScanCurves:
    base_accuracy: float | None = None
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # layer -> (s, accuracy)

    def add(self, layer: str, sparsity: float, accuracy: float) -> None:
        self.points.setdefault(layer, []).append((sparsity, accuracy))

    def safe_sparsity(self, layer: str) -> float | None:
        """Highest scanned sparsity that keeps the accuracy drop under 1 point (None: not scanned)."""
        if self.base_accuracy is None or layer not in self.points:
            return None
        sparsities, accuracies = zip(*self.points[layer], strict=True)
        return highest_safe_sparsity(sparsities, accuracies, self.base_accuracy)
