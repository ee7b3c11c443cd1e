"""The steps that edit targets through a dialog or change the model: exact target, scan, prune, finetune
and reset (the compound rule: tui.compound_flow). Each asks what it needs, then hands a job to the JobRunner."""

from functools import partial
from typing import TYPE_CHECKING

import torch

from prunetui.core.methods import METHODS
from prunetui.core.recipe import METHODS as TRAITS
from prunetui.core.recipe import Recipe
from prunetui.errors import UserError
from prunetui.tui import jobs
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.choice_dialog import ChoiceDialog
from prunetui.tui.screens.confirm_dialog import ConfirmDialog
from prunetui.tui.screens.finetune_dialog import FinetuneDialog
from prunetui.tui.text import parse_fraction, short_label

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


class ModelFlows:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench

    # --- method ----------------------------------------------------------------------------------
    def next_method(self) -> None:
        """The next pruning method: prune, scan, sizes and suggestions follow it; the curves shown are
        the stored scan of this model by that method, if there is one."""
        bench = self.bench
        names = list(METHODS)  # magnitude -> taylor -> channel; one that cannot be used is skipped
        start = names.index(bench.session.method.name)
        for step in range(1, len(names)):
            name = names[(start + step) % len(names)]
            if TRAITS[name].structured:  # its groups are listed first, as a job: progress row, `x`
                bench.jobs.start(f"Listing {name} groups", partial(jobs.switch_method, bench.session, name),
                               changes_model=False)  # fmt: skip
                return
            try:
                bench.session.set_method(name)
                break
            except UserError as error:
                bench.show_warning(str(error))
        else:
            return
        self.method_changed(name)

    def use_method(self, name: str) -> None:
        """Prune by `name` from now on (UserError when it cannot be used); a structured
        method's groups must be listed already (the planner has)."""
        self.bench.session.set_method(name)
        self.method_changed(name)

    def method_changed(self, name: str) -> None:
        """The views follow the session's new method: its name, its stored scan, its projection."""
        bench = self.bench
        bench.method = name
        bench.write_log(f"Method: {name}, {bench.session.method.summary}")
        usable = set(bench.session.unit_names())  # listed already (a structured method's, by its job)
        dropped = [n for n, t in bench.session.targets.items() if t > 0 and n not in usable]
        if dropped:  # else the projection is n/a, with a warning at every edit
            bench.set_targets(dict.fromkeys(dropped, 0.0))
            shown = ", ".join(short_label(n) for n in dropped[:3]) + (" …" if len(dropped) > 3 else "")
            bench.show_warning(f"{len(dropped)} target(s) set to 0: {name} cannot prune {shown}")
        bench.preview.request()
        bench.scan_settings.load_stored_scan()  # the curves shown are of this method

    # --- targets through a dialog ----------------------------------------------------------------
    def ask_exact_target(self) -> None:
        bench = self.bench
        layer_name = bench.selected_layer
        if layer_name is None:
            return
        dialog = AskDialog(
            "Target sparsity",
            f"{layer_name}: a number in [0, 1] or a percentage",
            parse_fraction,
            f"{bench.targets[layer_name]:g}",
        )
        bench.app.push_screen(dialog, partial(self._exact_target_chosen, layer_name))

    def _exact_target_chosen(self, layer_name: str, value: float | None) -> None:
        if value is not None:
            self.bench.set_target(layer_name, value)

    # --- jobs ------------------------------------------------------------------------------------
    def _needs_data(self, what: str) -> bool:
        if self.bench.session.data is None:
            self.bench.show_error(f"{what} needs data: start prunetui with --data")
            return True
        return False

    def scan(self) -> None:
        if not self._needs_data("Scan"):
            job = partial(jobs.scan, self.bench.session, sparsities=self.bench.scan_grid)
            self.bench.jobs.start("Scan", job, changes_model=False)

    def prune(self, start: str = "dense") -> None:
        """`p`: from the dense weights (the lab's); `P`: further from the weights as they are."""
        bench = self.bench
        predicted = bench.suggest.take_prediction()
        job = bench.recovery.prune_job(dict(bench.targets), predicted, start)  # b/B: BN recalibration
        bench.jobs.start("Prune further" if start == "current" else "Prune", job)

    def ask_finetune(self) -> None:
        """Finetune what the screen shows: not pruned yet, the targets are applied first; targets changed
        since the last prune, ask whether to prune to them first."""
        bench = self.bench
        if self._needs_data("Finetune"):
            return
        session = bench.session
        if self._prune_first() is not None:
            note = "Not pruned yet: the targets are applied first (as p does)."
            self._ask_finetune(note, prune_first=True)
            return
        if not session.targets_changed():
            self._ask_finetune("", prune_first=False)
            return
        run = session.current_run
        question = (
            f"The targets changed since the last prune: the weights hold {run.name} "
            f"({session.percent(session.current_size()):.2f}% of dense), the targets give "
            f"{self._projected_text()}.\nPrune to the targets first (from dense, as p does)?"
        )
        choices = [("y", "Prune, then finetune"), ("n", "Finetune the current masks")]
        bench.app.push_screen(ChoiceDialog("Targets changed", question, choices), self._stale_answer)

    def _projected_text(self) -> str:
        projected = self.bench.projected_mib
        return "n/a" if projected is None else f"{self.bench.session.percent(projected):.2f}%"

    def _stale_answer(self, answer: str | None) -> None:
        if answer is None:
            return
        prune = answer == "y"
        note = "The targets are applied first (as p does)." if prune else "Finetuning the current masks."
        self._ask_finetune(note, prune)

    def _ask_finetune(self, note: str, prune_first: bool) -> None:
        """The finetune dialog, filled with what the last finetune of this session used."""
        recovery = self.bench.recovery
        recipe = recovery.base_recipe()
        dialog = FinetuneDialog(note, self._gpu_count(), recipe, offered_last=recovery.last is not None)
        self.bench.app.push_screen(dialog, partial(self._finetune_chosen, prune_first))

    def _gpu_count(self) -> int:
        """GPUs a finetune can spread over: those visible when the model is on CUDA."""
        return torch.cuda.device_count() if self.bench.session.device.type == "cuda" else 1

    def _prune_first(self) -> dict[str, float] | None:
        """The targets to prune to before finetuning: when nothing is pruned yet and some target is set."""
        targets = dict(self.bench.targets)
        return targets if self.bench.session.is_dense and any(targets.values()) else None

    def _finetune_chosen(self, prune_first: bool, recipe: Recipe | None) -> None:
        """`recipe`: the dialog's (the targets shown: an AGP schedule grows the masks to them)."""
        if recipe is None:
            return
        bench = self.bench
        bench.recovery.remember(recipe)
        predicted = bench.suggest.take_prediction() if prune_first else None
        job = partial(jobs.finetune, bench.session, recipe, prune_first, predicted=predicted)
        if bench.jobs.start("Finetune", job):
            self.show_new_finetune()

    def show_new_finetune(self) -> None:
        """An empty Finetune tab for the epochs to come."""
        bench = self.bench
        bench.epochs = []
        bench.accuracy_before_finetune = None
        bench.show_plot("finetune-tab")

    def ask_reset(self) -> None:
        """Back to the dense weights; asks first when pruned weights would be lost."""
        bench = self.bench
        reset = partial(bench.jobs.start, "Reset", partial(jobs.reset, bench.session))
        if bench.session.is_dense:
            reset()
            return
        question = "Back to the dense weights? The pruned weights are lost unless exported (w)."
        bench.app.push_screen(ConfirmDialog(question), lambda yes: yes and reset())
