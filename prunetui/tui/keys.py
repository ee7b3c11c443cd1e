"""The main screen's keys. Descriptions are short for the footer; tooltips say more in the help screen
and the command palette. The footer holds what fits at 80 columns; the help screen lists everything."""

from textual.binding import Binding

NUDGE = 0.05
BUSY = "a job is running (x cancels it)"
OPENING = "the model is still loading"
# What works while the model opens (the first frame is drawn before torch is imported): everything else
# needs the session and is disabled (dimmed) until it arrives.
BEFORE_SESSION = {"quit", "focus_next", "focus_previous"}
TARGET_DIGITS = Binding.Group("Set target 0.0-0.9")
LOAD_RUN = "Targets from the selected run (Runs tab)"
SUGGESTION_ACTIONS = {"accept_suggestion", "discard_suggestion"}
# What changes or uses the targets waits while a suggestion is shown (hidden from the footer meanwhile).
BLOCKED_BY_SUGGESTION = {
    "nudge", "set_target", "exact_target", "compound", "compound_all", "open_profile", "prune",
    "prune_further", "finetune", "suggest", "toggle_lock", "load_run", "resume_run", "cycle_method",
}  # fmt: skip
# What starts a job or changes the targets is disabled while a job runs (dimmed in the footer): a job's
# transaction puts the targets back when it fails, and a resume sets them.
# Edits of the targets only: allowed beside a job that does not change the model (a scan).
TARGET_EDITS = {"nudge", "set_target", "exact_target", "compound", "compound_all", "open_profile", "load_run"}
BLOCKED_WHILE_BUSY = {
    "scan", "prune", "prune_further", "finetune", "reset", "export", "resume_run", "suggest",
    "accept_suggestion", "nudge", "set_target", "exact_target", "compound", "compound_all", "open_profile",
    "load_run", "cycle_method", "recalibrate",
}  # fmt: skip


def _digit_binding(digit: int) -> Binding:
    value = digit / 10
    return Binding(
        str(digit), f"set_target({value})", f"Set target to {value:.1f}", show=False, group=TARGET_DIGITS
    )


BINDINGS = [
    # Priority: the app moves the focus before it hands on the keys after tab, so keys typed in one read
    # with it (a fast typist over SSH) land in the next field, not in the one tab left.
    Binding("tab", "focus_next", "Next pane (arrows then work inside it)", show=False, priority=True),
    Binding("shift+tab", "focus_previous", "Previous pane", show=False, priority=True),
    Binding("s", "scan", "Scan", tooltip="Sensitivity scan of every layer", id="scan"),
    Binding("a", "suggest", "Suggest", tooltip="Suggest targets for a size or accuracy goal…", id="suggest"),
    # only while a suggestion is shown (escape discards it too: see action_cancel_job);
    # before the `enter` of exact_target, so that enter accepts first
    Binding(
        "y,enter",
        "accept_suggestion",
        "Accept",
        tooltip="Accept the suggested targets",
        key_display="y",
        id="accept-suggestion",
    ),
    Binding(
        "n",
        "discard_suggestion",
        "Discard",
        tooltip="Discard the suggested targets",
        id="discard-suggestion",
    ),
    Binding("p", "prune", "Prune", tooltip="Prune the dense weights to the targets", id="prune"),
    Binding(
        "P",
        "prune_further",
        "Prune further",
        tooltip="Prune further from the current weights (masks held, sparsities only grow)",
        show=False,
        id="prune-further",
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
    Binding(
        "c",
        "compound",
        "Compound",
        tooltip="Compound rule on the selected layer…",
        show=False,
        id="compound",
    ),
    Binding(
        "ctrl+s",
        "save_profile",
        "Save",
        tooltip="Save the targets as a profile…",
        show=False,
        id="save-profile",
    ),
    Binding("o", "open_profile", "Open", tooltip="Open a profile…", show=False, id="open-profile"),
    Binding("w", "export", "Export", tooltip="Export the model as a checkpoint…", show=False, id="export"),
    Binding("j", "select(1)", "Next layer", show=False, id="next-layer"),
    Binding("k", "select(-1)", "Previous layer", show=False, id="previous-layer"),
    # home/end: a focused DataTable's own (sideways) are replaced in LayerTable and RUNS_TABLE_HIDDEN
    Binding(
        "home,g",
        "select_edge(False)",
        "First layer",
        tooltip="First layer (or run, in the runs table)",
        show=False,
        id="first-layer",
    ),
    Binding(
        "end,G",
        "select_edge(True)",
        "Last layer",
        tooltip="Last layer (or run, in the runs table)",
        show=False,
        id="last-layer",
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
    Binding("enter", "exact_target", "Exact target", tooltip="Type the target…", show=False, id="exact"),
    Binding(
        "C",
        "compound_all",
        "Compound all",
        tooltip="Compound rule on every layer with a target > 0…",
        show=False,
        id="compound-all",
    ),
    Binding("r", "reset", "Reset", tooltip="Reset the model to the dense weights", show=False, id="reset"),
    Binding("t", "next_plot", "Next plot", show=False, id="next-plot"),
    Binding(
        "M",
        "cycle_method",
        "Method",
        tooltip="Next pruning method (magnitude, taylor, channel): how prune and scan choose the weights",
        show=False,
        id="method",
    ),
    Binding(
        "b",
        "recalibrate",
        "Recalibrate BN",
        tooltip="Recalibrate the BatchNorm statistics of the model as it is now (20 training batches)",
        show=False,
        id="recalibrate",
    ),
    Binding(
        "B",
        "toggle_recalibrate",
        "BN recal on/off",
        tooltip="Recalibrate BatchNorm after every prune and in suggestions (off: the lab's numbers)",
        show=False,
        id="toggle-recalibrate",
    ),
    Binding("z", "toggle_zeros", "Zeros", tooltip="Histogram: show or hide zeros", show=False, id="zeros"),
    Binding(
        "l",
        "toggle_lock",
        "Lock",
        tooltip="Lock the selected layer's target for suggestions (again unlocks)",
        show=False,
        id="lock",
    ),
    Binding("u", "show_runs", "Runs", tooltip="Show the runs and move to their table", show=False, id="runs"),
    Binding(
        "m",
        "mark_run",
        "Mark run",
        tooltip="Mark the selected run to compare (d)",
        show=False,
        id="mark-run",
    ),
    Binding(
        "d",
        "diff_runs",
        "Diff runs",
        tooltip="Diff the targets: marked run (or current) vs selected run",
        show=False,
        id="diff-runs",
    ),
    Binding(
        "R",
        "resume_run",
        "Resume run",
        tooltip="Resume the selected interrupted finetune run",
        show=False,
        id="resume-run",
    ),
]

# --- many layers at once, and the Sensitivity tab's view -------------------------------------------
# What acts on the layer table: off (hidden) while the Runs tab has the focus, where j/k move the runs'
# cursor instead and digits do nothing.
LAYER_ACTIONS = {
    "nudge", "set_target", "exact_target", "compound", "toggle_lock", "toggle_selected", "select_range",
    "select_all", "select_pattern",
}  # fmt: skip
# Keys that act on the Runs tab only while it is in view (the runs table's footer shows them).
RUNS_ACTIONS = {"mark_run", "diff_runs", "resume_run"}
# The runs table's footer (it has the focus in the Runs tab): what acts on a run, in short words, before
# its own n and O. The model's keys still work there but leave the footer (RUNS_TABLE_HIDDEN), else 80
# columns cut it before the run keys; the help screen lists every key. home/end there go to the first and
# the last run (a DataTable's own scroll sideways).
RUNS_TABLE_KEYS = [
    Binding("enter", "select_cursor", "Load", tooltip=LOAD_RUN),
    Binding("m", "app.mark_run", "Mark", tooltip="Mark the selected run to compare (d)"),
    Binding(
        "d", "app.diff_runs", "Diff", tooltip="Diff the targets: marked run (or current) vs selected run"
    ),
    Binding("R", "app.resume_run", "Resume", tooltip="Resume the selected interrupted finetune run"),
]
RUNS_TABLE_HIDDEN = [
    Binding(key, f"app.{action}", show=False)
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
    Binding(
        "v",
        "select_range",
        "Range",
        tooltip="Select a range: v at one end, move, v at the other",
        show=False,
        id="select-range",
    ),
    Binding(
        "V", "select_all", "All", tooltip="Select every layer (again: none)", show=False, id="select-all"
    ),
    Binding(
        "slash",
        "select_pattern",
        "Pattern",
        tooltip="Select the layers whose name matches a glob (layer3.*) or contains a text…",
        show=False,
        key_display="/",
        id="select-pattern",
    ),
    Binding(
        "T",
        "toggle_sensitivity_numbers",
        "Numbers",
        tooltip="Sensitivity: the numbers (layers × sparsity) or the curves",
        show=False,
        id="sensitivity-numbers",
    ),
    Binding(
        "S",
        "scan_settings",
        "Scan settings",
        tooltip="Scan settings: the sparsities s scans at and the tolerated accuracy drop…",
        show=False,
        id="scan-settings",
    ),
]
BINDINGS = [*BINDINGS, *SELECTION_BINDINGS]
