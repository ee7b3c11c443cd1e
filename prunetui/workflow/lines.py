"""The lab's report lines, word for word (MIT EfficientML.ai lab 1 and the blog), and our own few.

Every front end prints these strings and no others for the same facts.
"""

from prunetui.core.eta import duration

FINETUNE_HEADER = "Finetuning Fine-grained Pruned Sparse Model"


def dense_accuracy(accuracy: float) -> str:
    return f"Dense model has accuracy={accuracy:.2f}%"


def dense_size(size_mib: float) -> str:
    return f"Dense model has size={size_mib:.2f} MiB"


def sparse_size(size_mib: float, percent: float) -> str:
    return f"Sparse model has size={size_mib:.2f} MiB = {percent:.2f}% of dense model size"


def accuracy_before_finetune(accuracy: float) -> str:
    return f"Sparse model has accuracy={accuracy:.2f}% before finetuning"


def accuracy_after_finetune(accuracy: float) -> str:
    return f"Sparse model has accuracy={accuracy:.2f}% after finetuning"


def predicted_vs_measured(predicted: float, measured: float) -> str:
    return f"Predicted {predicted:.2f}% before finetuning (sum of scan drops); measured {measured:.2f}%"


def finished(job: str, seconds: float) -> str:
    """A job's last line: "Finetune finished in 3 min 05 s"."""
    return f"{job} finished in {duration(seconds)}"


def scan_finished(seconds: float) -> str:
    return finished("Scan", seconds)


def scan_cancelled(seconds: float, done: int, total: int) -> str:
    return f"Scan cancelled after {duration(seconds)} ({done} of {total} layers)"


NO_DATA = "No data: accuracy n/a (start with --data to evaluate, scan or finetune)"
FINETUNE_CANCELLED_AT_ONCE = "Finetune cancelled before the first epoch ended: weights unchanged"


def finetune_cancelled(completed: int, seconds: float) -> str:
    return f"Finetune cancelled after {completed} epochs ({duration(seconds)}): kept the best one"


def pruning_further(run_name: str, percent: float) -> str:
    return f"Pruning further from the current weights ({run_name}, {percent:.2f}% of dense): sparsities only grow"


def pruning_from_dense() -> str:
    return "Pruning from the dense weights"


def stale_targets(what: str, held: str) -> str:
    return f"Targets changed since the last prune: {what} {held}, not the targets shown"


def accuracy_recalibrated(accuracy: float) -> str:
    return f"Sparse model has accuracy={accuracy:.2f}% after BN recalibration"


def recovery_line(recipe) -> str:
    """The recovery options of a finetune, for its header line ("" when none)."""
    recovery, parts = recipe.recovery, []
    if recovery.gradual:
        layers = len(recipe.plan.active())
        parts.append(
            f"AGP schedule: {layers} layers pruned gradually over {recovery.agp_share:.0%} of the steps"
        )
    if recovery.distill:
        parts.append(
            f"distilling from the model as opened (T {recovery.temperature:g}, alpha {recovery.alpha:g})"
        )
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]


def gradual_start(share: float) -> str:
    return (
        "Gradual pruning (AGP): no one-shot prune; the finetune grows the masks from the dense weights "
        f"to the targets over its first {share:.0%}"
    )
