"""Where profiles and checkpoints go: everything relative is relative to the working directory."""

from pathlib import Path

from prunetui.core.export import side_file_path
from prunetui.core.profile import load_profile
from prunetui.errors import UserError
from prunetui.tui.text import filename_part

PROFILES = "profiles"
SHIPPED = Path(__file__).parents[1] / "profiles"  # the blog's runs, the lab's reference, the demo's


def shipped_profiles(model_label: str) -> list[Path]:
    """The profiles installed with prunetui that were made for `model_label` (or for any model)."""
    found = []
    for path in sorted(SHIPPED.glob("*.toml")):
        try:
            model = load_profile(path).model
        except UserError:
            continue
        if model in (None, model_label):
            found.append(path)
    return found


def user_path(text: str, workdir: Path) -> Path:
    text = text.strip()
    if not text:
        raise UserError("type a path")
    path = Path(text).expanduser()
    return path if path.is_absolute() else workdir / path


def profile_path(text: str, workdir: Path) -> Path:
    """A bare name (`run1`) means profiles/run1.toml."""
    path = Path(text.strip())
    if len(path.parts) == 1 and not path.suffix:
        return workdir / PROFILES / f"{path}.toml"
    return user_path(text, workdir)


def default_export_path(workdir: Path, model_label: str, profile_name: str) -> Path:
    """`MODEL-PROFILE.pt`, the model named once (`demo-aggressive`, not `demo-demo-aggressive`)."""
    model, profile = filename_part(model_label), filename_part(profile_name)
    name = profile if profile == model or profile.startswith(f"{model}-") else f"{model}-{profile}"
    return workdir / f"{name}.pt"


def export_files(path: Path) -> list[Path]:
    """What exporting to `path` writes: the checkpoint and its side file."""
    return [path, side_file_path(path)]


def shown(path: Path, workdir: Path) -> str:
    """`path` relative to the working directory when it is inside it."""
    try:
        return str(path.relative_to(workdir))
    except ValueError:
        return str(path)
