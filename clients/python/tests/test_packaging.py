"""The package builds, and says what it needs: pip reads pyproject.toml."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
PROJECT = HERE.parent


def test_the_wheel_builds_with_orjson_as_a_cpython_dependency(tmp_path):
    # Built from a copy, so that setuptools leaves its build/ and
    # egg-info/ there. No network: the build uses the setuptools and wheel
    # installed here (scripts/setup.sh installs wheel when it is missing).
    source = tmp_path / "source"
    shutil.copytree(PROJECT, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    out = tmp_path / "wheels"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = out.glob("model_exporter_client-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = z.read(meta).decode()
    assert "model_exporter_client/__init__.py" in names
    assert "model_exporter_client/py.typed" in names
    requires = [l for l in metadata.splitlines() if l.startswith("Requires-Dist:")]
    assert 'Requires-Dist: orjson>=3; platform_python_implementation == "CPython"' in requires, metadata
    assert "Classifier: Topic :: System :: Monitoring" in metadata
    assert "Provides-Extra: fast" in metadata
