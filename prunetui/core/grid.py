"""The one scan-grid parser of both front ends (`scan --sparsities`, the workbench's scan settings `S`):
the same text gives the same grid, so a scan made by one is found in the cache by the other. Torch-free."""

import math


def parse_grid(text: str, limit: int = 50) -> list[float]:
    """A scan grid, the one parser of both front ends: `0.4,0.5,0.9` or `start:stop:step` (stop
    excluded, like the lab's np.arange(0.4, 1.0, 0.1)); sorted, each value once, rounded to 6 places.
    ValueError with a reason otherwise (each value in [0, 1], at most `limit` values)."""
    raw = text.strip()
    try:
        if ":" in raw:
            start, stop, step = (float(x) for x in raw.split(":"))
            if not step > 0 or not all(map(math.isfinite, (start, stop, step))):
                raise ValueError
            count = max(0, math.ceil((stop - start) / step - 1e-9))
            if count > limit:
                raise OverflowError(count)
            values = [round(start + i * step, 6) for i in range(count)]
        else:
            values = [round(float(x), 6) for x in raw.split(",") if x.strip()]
    except OverflowError as error:
        raise ValueError(
            f"{error.args[0]} sparsities: {limit} at most (each one evaluates every layer)"
        ) from None
    except ValueError:
        raise ValueError("expected sparsities like 0.4,0.6,0.8 or start:stop:step like 0.4:1.0:0.1") from None
    if not values:
        raise ValueError("no sparsity in the grid: e.g. 0.4:1.0:0.1")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError("every sparsity must be in [0, 1]")
    values = sorted(set(values))
    if len(values) > limit:
        raise ValueError(f"{len(values)} sparsities: {limit} at most (each one evaluates every layer)")
    return values
