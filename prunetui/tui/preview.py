"""What the targets would give, computed off the UI thread: the projected size (tens of ms on a large
model) and, for a magnitude-like method, the |w| cut of the selected layer's target, drawn on its
histogram."""

from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from prunetui.tui.messages import PreviewReady

if TYPE_CHECKING:
    from prunetui.tui.app import PruneApp


class Preview:
    def __init__(self, app: "PruneApp") -> None:
        self.app = app
        # (method, layer, target) -> |w| cut; None: the method has no single cut
        self._thresholds: dict[tuple[str, str, float], float | None] = {}

    def threshold(self, layer_name: str, target: float) -> float:
        """Known once a preview has computed it; 0 (no line drawn) until then or without a cut."""
        return self._thresholds.get((self.app.session.method.name, layer_name, target)) or 0.0

    def request(self) -> None:
        """A newer request cancels the one still running (exclusive)."""
        app = self.app
        targets, layer_name = dict(app.session.targets), app.selected_layer
        app.run_worker(
            lambda: self._compute(targets, layer_name),
            group="preview",
            exclusive=True,
            thread=True,
            exit_on_error=False,
        )

    def _compute(self, targets: dict[str, float], layer_name: str | None) -> None:
        """In the thread: reads only the dense weights."""
        session = self.app.session
        projected_mib = session.projected_size(targets)
        if layer_name is not None:
            key = (session.method.name, layer_name, targets[layer_name])
            if key not in self._thresholds:
                self._thresholds[key] = session.weight_cut(layer_name, key[2])
        if not get_current_worker().is_cancelled:
            self.app.post_message(PreviewReady(targets, projected_mib))
