"""Coverage: every classifier of torchvision.models, end to end, the way a new user would run them.

For each model (`torchvision.models.list_models(module=torchvision.models)`, random weights, 10
classes, `random:4:3xSxS` images at the smallest size S of 64, 75, 96, 128, 224, 299 its forward
accepts in eval and train mode), in a process of its own with one thread and a time limit:

1. open: `prunetui.workflow.opening.open_session`, as `prunetui prune --model torchvision:NAME:10` does;
2. fine: profile `"*" = 0.5` (magnitude), `run_recipe` with `--out` and `--onnx`, the checkpoint reopened;
3. channel: profile `"*" = 0.3` (channel, every prunable group), the same;

and for each of 2-3, the outputs of the reopened model on a seeded batch of 2 must equal the pruned
model's (and keep 10 classes), and so must onnxruntime's on the ONNX file and, for the fine-grained
export, plain PyTorch's (`model.load_state_dict(torch.load(path)["state_dict"])`, README), within
1e-4 + 1e-4 * max |output| (core.onnx_export's tolerance). A step that fails gives its one line (the
UserError as the CLI prints it, else the exception's type and first line).

    PYTHONPATH=. .venv/bin/python benchmarks/coverage.py --limit-s 900 --out /tmp/coverage
    PYTHONPATH=. .venv/bin/python benchmarks/coverage.py --models squeezenet1_0,googlenet --out /tmp/cov

Results are one JSON per model in --out (a model already there is skipped unless --again), and the
markdown table of all of them in --out/table.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = (64, 75, 96, 128, 224, 299)
RATIOS = {"fine": ("magnitude", 0.5), "channel": ("channel", 0.3)}
ATOL = RTOL = 1e-4
FAMILIES = (
    ("resnext", "ResNeXt"), ("wide_resnet", "Wide ResNet"), ("resnet", "ResNet"), ("regnet", "RegNet"),
    ("mobilenet", "MobileNet"), ("efficientnet", "EfficientNet"), ("mnasnet", "MNASNet"),
    ("shufflenet", "ShuffleNet"), ("squeezenet", "SqueezeNet"), ("densenet", "DenseNet"),
    ("googlenet", "GoogLeNet"), ("inception", "Inception"), ("vgg", "VGG"), ("alexnet", "AlexNet"),
    ("convnext", "ConvNeXt"), ("vit", "ViT"), ("swin", "Swin"), ("maxvit", "MaxViT"),
)  # fmt: skip


def family(name: str) -> str:
    return next((label for prefix, label in FAMILIES if name.startswith(prefix)), "other")


def classifiers() -> list[str]:
    """Every classifier of torchvision.models, fewest parameters first (as its weights' metadata says)."""
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    params = {n: torchvision.models.get_model_weights(n).DEFAULT.meta["num_params"] for n in names}
    return sorted(names, key=params.__getitem__)


# --- one model, in its own process ----------------------------------------------------------------------
def one_line(error: BaseException) -> str:
    from prunetui.errors import UserError

    text = (str(error).strip().splitlines() or [""])[0]
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}"[:300]


def smallest_size(name: str) -> int:
    """The smallest of SIZES the dense model's forward accepts in eval and train mode (batch 2: the
    auxiliary heads of Inception v3 run in train mode only and need 299x299)."""
    import torch

    from prunetui.sources.models import build_model

    model = build_model(f"torchvision:{name}:10")
    for size in SIZES:
        try:
            with torch.no_grad():
                for train in (False, True):
                    model.train(train)(torch.zeros(2, 3, size, size))
            return size
        except Exception:  # noqa: BLE001 - too small for this model: try the next size
            continue
    return SIZES[-1]


def probe(size: int):
    import torch

    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))


def outputs(model, x):
    import torch

    from prunetui.core.outputs import logits_of

    model.eval()
    with torch.no_grad():
        return logits_of(model(x)).float()


def mismatch(ours, theirs, what: str) -> str:
    """ "" when equal within the tolerance, else what differs."""
    if tuple(ours.shape) != tuple(theirs.shape):
        return f"{what}: shape {list(theirs.shape)}, pruned {list(ours.shape)}"
    difference = float((ours - theirs).abs().max())
    if difference > ATOL + RTOL * float(ours.abs().max()):
        return f"{what}: outputs differ by {difference:.2e}"
    return ""


def onnx_outputs(path: Path, x):
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    run = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return torch.from_numpy(run.run(None, {run.get_inputs()[0].name: x.numpy()})[0]).float()


def request(name: str, size: int, folder: Path, checkpoint: Path | None = None, profile: Path | None = None):
    from prunetui.workflow.opening import Request

    return Request(
        model=f"torchvision:{name}:10", data=f"random:4:3x{size}x{size}", device="cpu",
        checkpoint=str(checkpoint) if checkpoint else None, profile=str(profile) if profile else None,
        state_dir=str(folder / "state"),
    )  # fmt: skip


def prune_step(name: str, size: int, folder: Path, step: str) -> dict:
    """Prune by the step's profile, export both files, reopen the checkpoint, compare the outputs."""
    from prunetui.core.profile import Profile, save_profile
    from prunetui.core.recipe import Outputs, Recipe
    from prunetui.workflow.opening import open_session
    from prunetui.workflow.run import run_recipe
    from prunetui.workflow.steps import say_nothing

    method, ratio = RATIOS[step]
    profile = save_profile(Profile(step, {"*": ratio}, method=method), folder / f"{step}.toml")
    opened = open_session(request(name, size, folder, profile=profile))
    session = opened.session
    checkpoint, onnx = folder / f"{step}.pt", folder / f"{step}.onnx"
    outputs_ = Outputs(checkpoint=str(checkpoint), onnx=str(onnx))
    recipe = Recipe(plan=session.plan(), name=step, outputs=outputs_)
    run_recipe(session, recipe, say_nothing)
    x = probe(size)
    pruned = outputs(session.model, x)
    units = session.units()
    refused = [unit.reason.split(" (")[0].split(";")[0][:80] for unit in units if not unit.prunable]
    found = {
        "units": sum(unit.prunable for unit in units), "of": len(units), "cost": session.run_cost(),
        "refused": {reason: refused.count(reason) for reason in sorted(set(refused))},
    }  # fmt: skip
    if tuple(pruned.shape) != (2, 10):
        return found | {"ok": False, "reason": f"the pruned model gives {list(pruned.shape)} outputs"}
    reopened = open_session(request(name, size, folder, checkpoint=checkpoint)).session
    problem = (
        mismatch(pruned, outputs(reopened.model, x), "reopened")
        or mismatch(pruned, onnx_outputs(onnx, x), "onnxruntime")
        or (
            mismatch(pruned, outputs(plain_pytorch(name, checkpoint), x), "plain PyTorch")
            if step == "fine"
            else ""
        )
    )
    return found | {"ok": not problem, "reason": problem}


def plain_pytorch(name: str, checkpoint: Path):
    """The README's recipe for a fine-grained export: the same architecture, its `state_dict` loaded."""
    import torch
    import torchvision

    model = torchvision.models.get_model(name, weights=None, num_classes=10)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    return model


def run_one(name: str) -> dict:
    import torch

    torch.set_num_threads(1)
    result = {"model": name, "family": family(name)}
    started = time.perf_counter()
    try:
        result["size"] = size = smallest_size(name)
        with tempfile.TemporaryDirectory(prefix=f"coverage-{name}-") as tmp:
            from prunetui.workflow.opening import open_session

            open_session(request(name, size, Path(tmp)))
            result["open"] = {"ok": True, "seconds": round(time.perf_counter() - started, 1)}
            for step in RATIOS:
                began = time.perf_counter()
                try:
                    outcome = prune_step(name, size, Path(tmp), step)
                except Exception as error:  # noqa: BLE001 - each step's failure is its one line
                    outcome = {"ok": False, "reason": one_line(error)}
                    outcome["trace"] = traceback.format_exc()[-2000:]
                result[step] = outcome | {"seconds": round(time.perf_counter() - began, 1)}
    except Exception as error:  # noqa: BLE001 - the model does not open
        result["open"] = {"ok": False, "reason": one_line(error), "trace": traceback.format_exc()[-2000:]}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# --- every model -------------------------------------------------------------------------------------
def limit_memory(gib: float) -> None:
    """In the child: address space capped at `gib` GiB, so one huge model fails alone (MemoryError)."""
    import resource

    cap = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_all(names: list[str], out: Path, limit_s: float, again: bool, memory_gib: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in names:
        path = out / f"{name}.json"
        if path.exists() and not again:
            continue
        started = time.perf_counter()
        command = [sys.executable, __file__, "--one", name, "--out", str(out)]
        try:
            done = subprocess.run(command, env=env, timeout=limit_s, capture_output=True, text=True,
                                  preexec_fn=partial(limit_memory, memory_gib))  # fmt: skip
            if not path.exists():
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                reason = f"the process ended (exit {done.returncode}): {tail[:200]}"
                write(path, {"model": name, "family": family(name), "open": {"ok": False, "reason": reason}})
        except subprocess.TimeoutExpired:
            reason = f"over the {limit_s:.0f} s limit"
            write(path, {"model": name, "family": family(name), "open": {"ok": False, "reason": reason},
                         "timed_out": True, "seconds": limit_s})  # fmt: skip
        print(f"{name}: {cell(load(path), 'channel')} ({time.perf_counter() - started:.0f} s)", flush=True)
    (out / "table.md").write_text(table([load(out / f"{n}.json") for n in names]))


def write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def cell(result: dict, step: str) -> str:
    part = result.get(step)
    if part is None:
        return "not run (did not open)" if step != "open" else "?"
    return "ok" if part["ok"] else part["reason"].replace("|", "/")


def groups(channel: dict) -> str:
    """`12/13`: prunable groups of all, when listed."""
    return f"{channel['units']}/{channel['of']}" if "of" in channel else str(channel.get("units", ""))


def table(results: list[dict]) -> str:
    rows = ["| model | family | input | open | fine-grained | channel | groups | MACs kept | s |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        channel = r.get("channel") or {}
        cost = channel.get("cost") or {}
        macs = f"{cost['macs'] / cost['macs_dense']:.2f}" if cost.get("macs") and channel.get("ok") else ""
        size = f"{r['size']}x{r['size']}" if r.get("size") else ""
        rows.append(
            f"| {r['model']} | {r['family']} | {size} | {cell(r, 'open')} | {cell(r, 'fine')} | "
            f"{cell(r, 'channel')} | {groups(channel)} | {macs} | {r.get('seconds', '')} |"
        )
    counts = {
        step: sum(1 for r in results if (r.get(step) or {}).get("ok")) for step in ("open", "fine", "channel")
    }
    rows.append("")
    rows.append(", ".join(f"{step} {n}/{len(results)}" for step, n in counts.items()))
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated names (default: every classifier)")
    parser.add_argument("--out", default="coverage-results", help="folder for the per-model JSON and table")
    parser.add_argument("--limit-s", type=float, default=900.0, help="time limit of one model")
    parser.add_argument("--memory-gib", type=float, default=14.0, help="address space of one model")
    parser.add_argument("--again", action="store_true", help="run models that have results again")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    if args.one:
        write(out / f"{args.one}.json", run_one(args.one))
        return
    names = args.models.split(",") if args.models else classifiers()
    started = time.perf_counter()
    run_all(names, out, args.limit_s, args.again, args.memory_gib)
    print(f"{len(names)} models in {time.perf_counter() - started:.0f} s; table in {out / 'table.md'}")


if __name__ == "__main__":
    main()
