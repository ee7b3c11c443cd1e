"""The main screen's keys. Descriptions are short for the footer; tooltips say more in the help screen
and the command palette. The footer holds what fits at 80 columns; the help screen lists everything."""

from textual.binding import Binding

NUDGE = 0.05
BUSY = "a job is running (x cancels it)"
OPENING = "the model is still loading"
# What works while the model opens (the first frame is drawn before torch is imported): everything else
# needs the session and is disabled (dimmed) until it arrives.
BEFORE_SESSION = {"quit"}
TARGET_DIGITS = Binding.Group("Set target 0.0-0.9")
LOAD_RUN = "Targets from the selected run (Runs tab)"
ACCEPT, DISCARD = "Accept the suggested targets", "Discard the suggested targets"
SUGGESTION_ACTIONS = {"accept_suggestion", "discard_suggestion"}
# What changes or uses the targets waits while a suggestion is shown (hidden from the footer meanwhile).
BLOCKED_BY_SUGGESTION = {
    "nudge", "set_target", "exact_target", "compound", "compound_all", "open_profile", "prune",
    "prune_further", "finetune", "suggest", "toggle_lock", "load_run", "resume_run", "cycle_method",
}  # fmt: skip
# What starts a job or changes the targets is disabled while a job runs (dimmed in the footer): a job's
# transaction puts the targets back when it fails, and a resume sets them.
# Edits of the targets only: allowed beside a job that does not change the model (a scan).
TARGET_EDITS = {"nudge", "set_target", "exact_target", "compound", "compound_all", "open_profile", "load_run",
                "cycle_bits"}  # fmt: skip
BLOCKED_WHILE_BUSY = {
    "scan", "prune", "prune_further", "finetune", "reset", "export", "resume_run", "suggest",
    "accept_suggestion", "nudge", "set_target", "exact_target", "compound", "compound_all", "open_profile",
    "load_run", "cycle_method", "recalibrate", "cycle_bits", "quantize", "time_groups",
}  # fmt: skip


def hidden(key: str, action: str, description: str, tooltip: str, id: str) -> Binding:  # noqa: A002
    """A key shown in the help screen and the command palette, not in the 80-column footer."""
    return Binding(key, action, description, tooltip=tooltip, show=False, id=id)


def _digit_binding(digit: int) -> Binding:
    value = digit / 10
    return Binding(
        str(digit), f"set_target({value})", f"Set target to {value:.1f}", show=False, group=TARGET_DIGITS
    )


# The app's (they move the focus in a dialog too). Priority: the app moves the focus before it hands on the
# keys after tab, so keys typed in one read with it (a fast typist over SSH) land in the next field, not in
# the one tab left.
FOCUS_BINDINGS = [
    Binding("tab", "focus_next", "Next pane (arrows then work inside it)", show=False, priority=True),
    Binding("shift+tab", "focus_previous", "Previous pane", show=False, priority=True),
]
BINDINGS = [
    Binding("s", "scan", "Scan", tooltip="Sensitivity scan of every layer", id="scan"),
    Binding(
        "a",
        "suggest",
        "Suggest",
        tooltip="Suggest targets for a size, accuracy or speed-up (2x) goal…",
        id="suggest",
    ),
    # only while a suggestion is shown (escape discards it too: see action_cancel_job);
    # before the `enter` of exact_target, so that enter accepts first
    Binding(
        "y,enter", "accept_suggestion", "Accept", tooltip=ACCEPT, key_display="y", id="accept-suggestion"
    ),
    Binding("n", "discard_suggestion", "Discard", tooltip=DISCARD, id="discard-suggestion"),
    Binding("p", "prune", "Prune", tooltip="Prune the dense weights to the targets", id="prune"),
    hidden(
        "P",
        "prune_further",
        "Prune further",
        "Prune further from the current weights (masks held, sparsities only grow)",
        "prune-further",
    ),
    Binding("f", "finetune", "Finetune", tooltip="Finetune with the masks held…", id="finetune"),
    Binding(
        "x,escape",
        "cancel_job",
        "Cancel",
        tooltip="Cancel the running job (or discard a suggestion, or clear the layer selection)",
        key_display="x",
        id="cancel",
    ),
    Binding("question_mark", "help", "Help", tooltip="Every key", key_display="?", id="help"),
    Binding("q", "quit", "Quit", tooltip="Quit (asks while a job runs)", id="quit"),
    # not in the footer: it would overflow at 80 columns
    hidden("c", "compound", "Compound", "Compound rule on the selected layer…", "compound"),
    hidden("ctrl+s", "save_profile", "Save", "Save the targets as a profile…", "save-profile"),
    hidden("o", "open_profile", "Open", "Open a profile…", "open-profile"),
    hidden("w", "export", "Export", "Export the model as a checkpoint…", "export"),
    Binding("j", "select(1)", "Next layer", show=False, id="next-layer"),
    Binding("k", "select(-1)", "Previous layer", show=False, id="previous-layer"),
    # home/end: a focused DataTable's own (sideways) are replaced in LayerTable and RUNS_TABLE_HIDDEN
    hidden(
        "home,g",
        "select_edge(False)",
        "First layer",
        "First layer (or run, in the runs table)",
        "first-layer",
    ),
    hidden(
        "end,G", "select_edge(True)", "Last layer", "Last layer (or run, in the runs table)", "last-layer"
    ),
    Binding(
        "plus,equals_sign",
        f"nudge({NUDGE})",
        f"Target +{NUDGE}",
        show=False,
        key_display="+",
        id="nudge-up",
    ),
    Binding("minus", f"nudge({-NUDGE})", f"Target -{NUDGE}", show=False, key_display="-", id="nudge-down"),
    *(_digit_binding(d) for d in range(10)),
    hidden("enter", "exact_target", "Exact target", "Type the target…", "exact"),
    hidden(
        "C", "compound_all", "Compound all", "Compound rule on every layer with a target > 0…", "compound-all"
    ),
    hidden("r", "reset", "Reset", "Reset the model to the dense weights", "reset"),
    Binding("t", "next_plot", "Next plot", show=False, id="next-plot"),
    hidden(
        "M",
        "cycle_method",
        "Method",
        "Next pruning method (magnitude, taylor, channel): how prune and scan choose the weights",
        "method",
    ),
    hidden(
        "L",
        "time_groups",
        "Time groups",
        "Time each channel group's widths on this device: the Time column, what a 2x goal (a) plans on",
        "time-groups",
    ),
    hidden(
        "b",
        "recalibrate",
        "Recalibrate BN",
        "Recalibrate the BatchNorm statistics of the model as it is now (20 training batches)",
        "recalibrate",
    ),
    hidden(
        "B",
        "toggle_recalibrate",
        "BN recal on/off",
        "Recalibrate BatchNorm after every prune and in suggestions (off: the lab's numbers)",
        "toggle-recalibrate",
    ),
    hidden("z", "toggle_zeros", "Zeros", "Histogram: show or hide zeros", "zeros"),
    hidden(
        "i", "cycle_bits", "Bits", "k-means bits of the selected layer: Han's default, 8, 7, ..., 2", "bits"
    ),
    hidden(
        "Q",
        "quantize",
        "Quantize",
        "Quantize the model as it is by k-means at the Bits column, masks kept; centroid finetune…",
        "quantize",
    ),
    hidden(
        "l", "toggle_lock", "Lock", "Lock the selected layer's target for suggestions (again unlocks)", "lock"
    ),
    hidden("u", "show_runs", "Runs", "Show the runs and move to their table", "runs"),
    hidden("m", "mark_run", "Mark run", "Mark the selected run to compare (d)", "mark-run"),
    hidden(
        "d",
        "diff_runs",
        "Diff runs",
        "Diff the targets: marked run (or current) vs selected run",
        "diff-runs",
    ),
    hidden("R", "resume_run", "Resume run", "Resume the selected interrupted finetune run", "resume-run"),
]

# --- many layers at once, and the Sensitivity tab's view -------------------------------------------
# What acts on the layer table: off (hidden) while the Runs tab has the focus, where j/k move the runs'
# cursor instead and digits do nothing.
LAYER_ACTIONS = {
    "nudge", "set_target", "exact_target", "compound", "toggle_lock", "toggle_selected", "select_range",
    "select_all", "select_pattern", "cycle_bits",
}  # fmt: skip
# Keys that act on the Runs tab only while it is in view (the runs table's footer shows them).
RUNS_ACTIONS = {"mark_run", "diff_runs", "resume_run"}
# The runs table's footer (it has the focus in the Runs tab): what acts on a run, in short words, before
# its own n and O. The model's keys still work there but leave the footer (RUNS_TABLE_HIDDEN), else 80
# columns cut it before the run keys; the help screen lists every key. home/end there go to the first and
# the last run (a DataTable's own scroll sideways).
RUNS_TABLE_KEYS = [
    Binding("enter", "select_cursor", "Load", tooltip=LOAD_RUN),
    Binding("m", "screen.mark_run", "Mark", tooltip="Mark the selected run to compare (d)"),
    Binding(
        "d", "screen.diff_runs", "Diff", tooltip="Diff the targets: marked run (or current) vs selected run"
    ),
    Binding("R", "screen.resume_run", "Resume", tooltip="Resume the selected interrupted finetune run"),
]
RUNS_TABLE_HIDDEN = [
    Binding(key, f"screen.{action}", show=False)
    for key, action in (
        ("s", "scan"), ("a", "suggest"), ("p", "prune"), ("f", "finetune"), ("x", "cancel_job"),
        ("escape", "cancel_job"), ("home", "select_edge(False)"), ("end", "select_edge(True)"),
    )
]  # fmt: skip
SELECTION_BINDINGS = [
    Binding(
        "space",
        "toggle_selected",
        "Select",
        tooltip="Select the layer (again: unselect): digits, +/-, enter and c then edit every selected layer",
        show=False,
        key_display="space",
        id="toggle-selected",
    ),
    hidden(
        "v", "select_range", "Range", "Select a range: v at one end, move, v at the other", "select-range"
    ),
    hidden("V", "select_all", "All", "Select every layer (again: none)", "select-all"),
    Binding(
        "slash",
        "select_pattern",
        "Pattern",
        tooltip="Select the layers whose name matches a glob (layer3.*) or contains a text…",
        show=False,
        key_display="/",
        id="select-pattern",
    ),
    hidden(
        "T",
        "toggle_sensitivity_numbers",
        "Numbers",
        "Sensitivity: the numbers (layers × sparsity) or the curves",
        "sensitivity-numbers",
    ),
    hidden(
        "S",
        "scan_settings",
        "Scan settings",
        "Scan settings: the sparsities s scans at and the tolerated accuracy drop…",
        "scan-settings",
    ),
]
BINDINGS = [*BINDINGS, *SELECTION_BINDINGS]
"""The workbench's keys (WorkbenchScreen.BINDINGS)."""
