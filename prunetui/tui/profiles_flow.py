"""Profiles and export, under the working directory: save the targets (ctrl+s), open a profile (o), apply
the one given at start, export the model as a checkpoint (w). Nothing is overwritten without asking."""

import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.core.profile import Profile, load_profile, save_profile
from prunetui.errors import UserError
from prunetui.tui import jobs
from prunetui.tui.paths import (
    PROFILES,
    default_export_path,
    export_files,
    profile_path,
    shipped_profiles,
    user_path,
)
from prunetui.tui.runs_view import profile_name_of
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.screens.choice_dialog import ChoiceDialog
from prunetui.tui.screens.confirm_dialog import ConfirmDialog
from prunetui.tui.screens.open_profile_dialog import OpenProfileDialog
from prunetui.tui.text import parse_profile_name
from prunetui.workflow.policy import profile_model_warning

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench

RUN_NUMBER = re.compile(r"(?<![a-z])run(\d+)(?!\d)", re.IGNORECASE)


class ProfilesFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench

    @property
    def folder(self) -> Path:
        return self.bench.workdir / PROFILES

    # --- open ------------------------------------------------------------------------------------
    def _check_model(self, profile: Profile) -> None:
        """The CLI's rule: another model's profile is a warning (its layer names are checked anyway)."""
        warning = profile_model_warning(profile.name, profile.model, self.bench.session.label)
        if warning is not None:
            self.bench.show_warning(warning)

    def _apply(self, profile: Profile) -> None:
        """Check and apply; a UserError leaves the targets as they were."""
        self._check_model(profile)
        self.bench.session.apply_profile(profile)
        self.bench.sync_targets()
        self.bench.bits.sync()

    def apply_at_start(self, profile: Profile) -> None:
        try:
            self._apply(profile)
        except UserError as error:
            self.bench.show_error(str(error))
            return
        self.bench.write_log(f"Profile {profile.name} applied to the targets")

    def ask_open(self) -> None:
        here = sorted(self.folder.glob("*.toml"))
        files = [(self.bench.shown(p), self.bench.shown(p)) for p in here]
        seen = {p.resolve() for p in here}
        for path in shipped_profiles(self.bench.session.label):
            if path.resolve() not in seen:
                files.append((f"{path.stem} (shipped)", str(path)))
        self.bench.app.push_screen(OpenProfileDialog(files, self._open), self._opened)

    def _open(self, text: str) -> Profile:
        """Called by the dialog: load and apply, or raise the UserError it shows."""
        profile = load_profile(profile_path(text, self.bench.workdir))
        self._apply(profile)
        return profile

    def _opened(self, profile: Profile | None) -> None:
        if profile is not None:
            session = self.bench.session
            active = sum(1 for value in session.targets.values() if value > 0)
            self.bench.write_log(f"Opened profile {profile.name}: {active} {session.method.noun} with a target")
            for match in session.resolved.patterns:  # what each glob took (core.patterns)
                self.bench.write_log(f"  {match.line(session.method.noun)}", "dim")

    # --- save ------------------------------------------------------------------------------------
    def ask_save(self) -> None:
        dialog = AskDialog(
            "Save profile",
            f"Name (saved as {PROFILES}/NAME.toml in {self.bench.workdir})",
            parse_profile_name,
            self._name_suggestion(),
        )
        self.bench.app.push_screen(dialog, self._name_chosen)

    def _name_suggestion(self) -> str:
        """The current profile's name, or the first runN that no profile here and no run of this model
        is named after (`run4`, `RUN4 compound`, `run4+ft5`), counting on from the prune runs made."""
        if self.bench.session.profile_name != "custom":
            return self.bench.session.profile_name
        names = [p.stem for p in self.folder.glob("*.toml")] + [run.name for run in self.bench.runs]
        taken = {int(match[1]) for name in names if (match := RUN_NUMBER.search(name))}
        n = 1 + sum(run.kind == "prune" for run in self.bench.runs)
        while n in taken:
            n += 1
        return f"run{n}"

    def _name_chosen(self, profile_name: str | None) -> None:
        if profile_name is None:
            return
        path = self.folder / f"{profile_name}.toml"
        if not path.exists():
            self._save(profile_name, path, overwrite=False)
            return
        self.bench.app.push_screen(
            ConfirmDialog(f"{self.bench.shown(path)} exists. Overwrite it?"),
            lambda yes: yes and self._save(profile_name, path, overwrite=True),
        )

    def _save(self, profile_name: str, path: Path, overwrite: bool) -> None:
        session = self.bench.session
        try:
            save_profile(session.profile(profile_name), path, overwrite=overwrite)
        except UserError as error:
            self.bench.show_error(str(error))
            return
        session.profile_name = profile_name
        self.bench.write_log(f"Saved profile {self.bench.shown(path)}")

    # --- export ----------------------------------------------------------------------------------
    def ask_export(self) -> None:
        """Export what the screen shows: when the targets differ from what the weights hold, ask whether
        to prune to them first or to export the weights as they are (and say which is written)."""
        session = self.bench.session
        if not session.targets_changed():
            self._ask_export_path(prune_first=False)
            return
        held = session.current_run
        holds = (
            f"{held.name} ({session.percent(session.current_size()):.2f}% of dense)"
            if held
            else "the dense weights"
        )
        question = (
            f"The targets changed since the last prune: the weights hold {holds}, not the targets shown."
            "\nPrune to the targets first (from dense, as p does)?"
        )
        choices = [("y", "Prune, then export"), ("n", "Export the weights as they are")]
        self.bench.app.push_screen(
            ChoiceDialog("Targets changed", question, choices),
            lambda answer: answer is not None and self._ask_export_path(prune_first=answer == "y"),
        )

    def _ask_export_path(self, prune_first: bool) -> None:
        bench = self.bench
        run = bench.session.current_run
        if prune_first:
            profile_name = bench.session.profile_name
        elif run is not None:  # the weights as they are: named after the run that made them (as renamed)
            profile_name = profile_name_of(run)
        else:
            profile_name = "dense" if bench.session.targets_changed() else bench.session.profile_name
        default = default_export_path(bench.workdir, bench.session.label, profile_name)
        dialog = AskDialog(
            "Export checkpoint",
            "Path (relative to the working directory): .pt, or .ptz compressed, .onnx, .int8.onnx",
            self._parse_export_path,
            bench.shown(default),
        )
        bench.app.push_screen(dialog, partial(self._export_path_chosen, profile_name, prune_first))

    def _parse_export_path(self, text: str) -> Path:
        try:
            return user_path(text, self.bench.workdir)
        except UserError as error:
            raise ValueError(str(error)) from None

    def _export_path_chosen(self, profile_name: str, prune_first: bool, path: Path | None) -> None:
        if path is None:
            return
        existing = [self.bench.shown(p) for p in export_files(path) if p.exists()]
        if not existing:
            self._export(profile_name, path, False, prune_first)
            return
        question = f"{' and '.join(existing)} exist{'s' if len(existing) == 1 else ''}. Overwrite?"
        self.bench.app.push_screen(
            ConfirmDialog(question), lambda yes: yes and self._export(profile_name, path, True, prune_first)
        )

    def _export(self, profile_name: str, path: Path, overwrite: bool, prune_first: bool) -> None:
        bench = self.bench
        recipe = bench.recovery.base_recipe() if prune_first else None
        job = partial(jobs.export, bench.session, path, profile_name, overwrite, recipe=recipe)
        bench.jobs.start("Export", job, changes_model=prune_first)
