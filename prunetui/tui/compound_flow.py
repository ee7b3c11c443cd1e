"""`c` / `C`: the blog's rule for the next run, SPARSITY = SPARSITY_PREV + (1 - SPARSITY_PREV) x beta
(seed blog, RUN4), where SPARSITY_PREV is the sparsity the layer is pruned to now (the last prune's
target; 0 on a dense model). Each application starts again from that base, so `c` then `C`, or `c`
typed twice to correct beta, never compound twice; the dialog shows the base and a live preview."""

from functools import partial
from typing import TYPE_CHECKING

from prunetui.core.pruning import compound
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.text import COMPOUND_RULE, parse_fraction, short_label

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench

PREVIEWED = 3  # layers named in the preview; the rest are counted


class CompoundFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench

    def bases(self, layer_names: list[str]) -> dict[str, float]:
        """SPARSITY_PREV of each layer: the target the weights in hand were pruned to."""
        held = self.bench.session.pruned_targets()
        return {name: held[name] for name in layer_names}

    def ask_selected(self) -> None:
        layer_name = self.bench.selected_layer
        if layer_name is not None:
            self.ask(layer_name, [layer_name])

    def ask_pruned(self) -> None:
        """`C`: every layer the weights hold pruned."""
        pruned = [name for name, base in self.bases(self.bench.session.layer_names).items() if base > 0]
        if not pruned:
            self.bench.notify("Nothing is pruned yet: the rule starts from a pruned layer (p prunes)",
                            severity="warning")  # fmt: skip
            return
        self.ask(f"{len(pruned)} pruned layers", pruned)

    def ask(self, what: str, layer_names: list[str]) -> None:
        """Ask beta for `layer_names` (`what` names them in the prompt), then set their targets."""
        bases = self.bases(layer_names)
        if len(bases) == 1:
            base = next(iter(bases.values()))
            prompt = f"{what}: pruned to {base:.2f} now; target = {base:.2f} + (1 - {base:.2f}) × beta"
        else:
            prompt = f"{what}, each from the sparsity it is pruned to now: {COMPOUND_RULE}"
        dialog = AskDialog("Compound rule", prompt, parse_fraction, preview=partial(preview, bases))
        self.bench.app.push_screen(dialog, partial(self._chosen, bases))

    def _chosen(self, bases: dict[str, float], beta: float | None) -> None:
        if beta is None:
            return
        bench = self.bench
        bench.set_targets({name: compound(base, beta) for name, base in bases.items()})
        bench.write_log(
            f"Compound rule, beta {beta:g}, applied to {len(bases)} layer(s) from their pruned sparsity"
        )


def preview(bases: dict[str, float], beta: float) -> str:
    """`conv3 0.80→0.90, conv4 0.91→0.96 … (+2 layers)`: what the targets become at `beta`."""
    shown = [f"{short_label(n)} {b:.2f}→{compound(b, beta):.2f}" for n, b in list(bases.items())[:PREVIEWED]]
    more = len(bases) - PREVIEWED
    return ", ".join(shown) + (f" … (+{more} layers)" if more > 0 else "")
