"""The lab's report lines, word for word (MIT EfficientML.ai lab 1 and the blog), and our own few.

Every front end prints these strings and no others for the same facts.
"""

from collections import Counter

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


CENTROID_HEADER = "Finetuning the k-means centroids (pruned weights held at zero)"


def quantizing(kind: str, bits: dict[str, int]) -> str:
    """What a quantization does, before it starts."""
    if kind == "int8":
        return f"Quantizing {len(bits)} layers to per-channel int8, masks kept"
    counts = Counter(bits.values())
    spread = ", ".join(f"{b} bits x{counts[b]}" for b in sorted(counts, reverse=True))
    return f"Quantizing {len(bits)} layers by k-means weight sharing ({spread}), masks kept"


def accuracy_quantized(accuracy: float, centroid_finetune: bool) -> str:
    when = " before centroid finetuning" if centroid_finetune else ""
    return f"Quantized model has accuracy={accuracy:.2f}%{when}"


def accuracy_after_centroids(accuracy: float) -> str:
    return f"Quantized model has accuracy={accuracy:.2f}% after centroid finetuning"


def file_on_disk(path: str, size: int, dense_bytes: int) -> str:
    """A written model file against the dense fp32 file, both measured."""
    return (
        f"On disk: {path} has {size:,} bytes = {dense_bytes / size:.2f}x smaller than the dense fp32 file "
        f"({dense_bytes:,} bytes)"
    )


def lab_size_vs_file(size_mib: float, dense_bytes: int) -> str:
    """The lab's size (nonzeros x 32 bit) against the same dense file."""
    lab = size_mib * 2**20
    return f"The lab's size {size_mib:.2f} MiB = {dense_bytes / lab:.2f}x smaller than the dense fp32 file"
