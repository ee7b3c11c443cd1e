"""A full disk while writing an export, an ONNX file, a run record or a resume state: one error line
naming the file, no partial file at the target, no temp file left, and the earlier file as it was.

Each case runs on a real tmpfs that fills up (as root) and on the injected small disk (tests/disks.py)."""

import json

import pytest
import torch
from conftest import tiny_cnn
from disks import KINDS, small_disk

from prunetui.cli import main
from prunetui.core.atomic import write_all
from prunetui.core.export import export_checkpoint
from prunetui.core.onnx_export import export_onnx
from prunetui.core.runs import RunStore
from prunetui.core.session import Session
from prunetui.errors import UserError

FULL = "No space left on device"
OLD = b"the earlier file"


def pruned_session(store: RunStore | None = None) -> Session:
    session = Session(tiny_cnn(), label="tiny", store=store)
    session.set_target("3.weight", 0.5)
    session.prune(session.recipe(name="kept"))
    return session


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_disk_keeps_the_earlier_export_and_its_side_file(tmp_path, kind):
    with small_disk(tmp_path, kind) as disk:
        path = disk.path / "tiny.pt"
        path.write_bytes(OLD)
        (disk.path / "tiny.pt.toml").write_bytes(OLD)
        disk.fill(leave=4096)  # the checkpoint (~9 KiB) fails part way through
        with pytest.raises(UserError) as raised:
            export_checkpoint(pruned_session(), path, "mine", overwrite=True)
        assert str(raised.value) == f"cannot write {path}: {FULL}; tiny.pt and tiny.pt.toml are as they were"
        assert path.read_bytes() == OLD and (disk.path / "tiny.pt.toml").read_bytes() == OLD
        assert disk.names() == ["tiny.pt", "tiny.pt.toml"]  # no temp file left


@pytest.mark.parametrize("kind", KINDS)
def test_files_written_together_are_all_kept_when_the_last_does_not_fit(tmp_path, kind):
    with small_disk(tmp_path, kind) as disk:
        first, second = disk.path / "a.pt", disk.path / "a.pt.toml"
        first.write_bytes(OLD)
        second.write_bytes(OLD)
        disk.fill(leave=8192)
        with pytest.raises(OSError) as raised:  # the first fits, the second does not
            write_all(
                [(first, lambda f: f.write(b"new"), True), (second, lambda f: f.write(b"x" * 65536), True)]
            )
        assert raised.value.filename == str(second) and raised.value.strerror == FULL
        assert first.read_bytes() == OLD and second.read_bytes() == OLD
        assert disk.names() == ["a.pt", "a.pt.toml"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_disk_keeps_the_earlier_onnx_file(tmp_path, kind):
    model = tiny_cnn()
    with small_disk(tmp_path, kind) as disk:
        path = disk.path / "tiny.onnx"
        path.write_bytes(OLD)
        disk.fill(leave=4096)  # the ONNX file is ~7 KiB
        with pytest.raises(UserError) as raised:
            export_onnx(model, torch.rand(4, 1, 8, 8), path)
        assert str(raised.value) == (
            f"cannot write {path}: {FULL}; nothing written; an earlier file there is unchanged"
        )
        assert path.read_bytes() == OLD and disk.names() == ["tiny.onnx"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_disk_keeps_the_previous_run_record(tmp_path, kind):
    with small_disk(tmp_path, kind) as disk:
        store = RunStore(state_dir=disk.path / "state")
        session = pruned_session(store)
        [record] = store.load_all()
        before = (store.folder / f"{record.id}.json").read_text()
        disk.fill(leave=0)
        record.name = "changed"
        with pytest.raises(UserError) as raised:
            store.save(record)
        path = store.folder / f"{record.id}.json"
        assert str(raised.value) == f"cannot save run state {path}: {FULL}; any earlier version is unchanged"
        assert path.read_text() == before and json.loads(before)["name"] == "kept"
        assert sorted(p.name for p in store.folder.iterdir()) == [path.name]
        assert session.runs()[0].name == "kept"


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_disk_keeps_the_previous_resume_state(tmp_path, kind):
    with small_disk(tmp_path, kind) as disk:
        store = RunStore(state_dir=disk.path / "state")
        session = pruned_session(store)
        record = session.current_run
        store.save_resume_state(record, {"epoch": 1})
        path = store.resume_path(record)
        before = path.read_bytes()
        disk.fill(leave=4096)
        big = {"epoch": 2, "weights": torch.zeros(4096)}  # 16 KiB: fails part way through
        with pytest.raises(UserError) as raised:
            store.save_resume_state(record, big)
        assert str(raised.value) == f"cannot save run state {path}: {FULL}; any earlier version is unchanged"
        assert path.read_bytes() == before
        assert torch.load(path, weights_only=True) == {"epoch": 1}
        assert sorted(p.name for p in store.folder.iterdir()) == sorted([path.name, f"{record.id}.json"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_cli_says_one_line_when_out_does_not_fit(tmp_path, monkeypatch, capsys, kind):
    monkeypatch.chdir(tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text('name = "p"\n[sparsity]\n"backbone.conv3.weight" = 0.5\n')
    with small_disk(tmp_path, kind) as disk:
        out = disk.path / "demo.pt"
        out.write_bytes(OLD)
        disk.fill(leave=4096)
        code = main(["prune", "--profile", str(profile), "--out", str(out), "--force", "--json"])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == ""
        last = captured.err.splitlines()[-1]
        assert last == f"error: cannot write {out}: {FULL}; demo.pt and demo.pt.toml are as they were"
        assert "Traceback" not in captured.err and "inline_container" not in captured.err
        assert out.read_bytes() == OLD and disk.names() == ["demo.pt"]
