"""Accuracy before finetuning at the same size: suggested profile vs uniform vs blog-style hand choice.

    python benchmarks/suggest_vs_uniform.py [--budget 25] [--model demo --data digits]

The hand choice follows the blog's habit: leave the first two layers dense and prune later, larger
layers harder (sparsity rising with the layer's share of weights), scaled until it fits the budget.
"""

import argparse

from prunetui.core.session import Session
from prunetui.core.suggest import ScanTable, suggest_for_budget
from prunetui.sources import load_data, load_model

GRID = [round(0.4 + 0.05 * i, 2) for i in range(12)]  # 0.40 ... 0.95


def largest_fitting(session: Session, shape: dict[str, float], budget: float) -> dict[str, float]:
    """Scale a profile shape (values in [0, 1]) by the smallest factor whose size fits the budget."""
    for step in range(1, 1001):
        targets = {n: min(0.99, v * step / 1000 * 1.5) for n, v in shape.items()}
        if session.projected_size(targets) <= budget:
            return targets
    raise SystemExit("the hand-choice shape cannot reach the budget")


def accuracy_of(session: Session, targets: dict[str, float]) -> tuple[float, float]:
    session.targets = dict(targets)
    session.prune()
    return session.percent(session.current_size()), session.evaluate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=25.0, help="percent of dense")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--checkpoint")
    parser.add_argument("--data", default="digits")
    args = parser.parse_args()

    model, label = load_model(args.model, args.checkpoint)
    session = Session(model, load_data(args.data), label)
    base = session.evaluate()
    budget = session.dense_size * args.budget / 100
    scan = session.scan(GRID)
    params = {i.name: i.params for i in session.layers()}
    table = ScanTable(GRID, base, scan.layers, session.layer_names, session.kept_count)
    proposal = suggest_for_budget(table, budget, session.projected_size)

    names = session.layer_names
    uniform = largest_fitting(session, dict.fromkeys(names, 1.0), budget)
    biggest = max(params.values())
    hand_shape = {n: (0.0 if i < 2 else 0.5 + 0.5 * params[n] / biggest) for i, n in enumerate(names)}
    hand = largest_fitting(session, hand_shape, budget)

    print(
        f"{label}: dense accuracy {base:.2f}%, budget {args.budget:.1f}% of dense, scan {scan.seconds:.1f} s"
    )
    print(f"{'profile':<12} {'% of dense':>10} {'accuracy before finetune':>26}")
    for title, targets in (("suggested", proposal.targets), ("uniform", uniform), ("hand (blog)", hand)):
        percent, accuracy = accuracy_of(session, targets)
        print(f"{title:<12} {percent:>10.2f} {accuracy:>25.2f}%")
    print(f"suggested profile's predicted accuracy: {proposal.predicted_accuracy:.2f}% (sum of scan drops)")
    print("suggested:", {n.removesuffix(".weight"): t for n, t in proposal.targets.items()})


if __name__ == "__main__":
    main()
