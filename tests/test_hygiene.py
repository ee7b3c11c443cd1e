import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import prunetui.core as core
for module in pkgutil.walk_packages(core.__path__, "prunetui.core."):
    importlib.import_module(module.name)
print(sorted(m for m in ("textual", "plotext", "textual_plotext") if m in sys.modules))
print(len([m for m in sys.modules if m.startswith("prunetui.core.")]))
"""


def test_engine_imports_no_ui():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout
    ui_modules, engine_modules = out.split("\n")[:2]
    assert ui_modules == "[]"
    assert int(engine_modules) >= 10  # every engine module was really imported
