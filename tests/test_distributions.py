"""The distributions, built and used as a new user would, offline.

The sdist is built from the checkout with setuptools' PEP 517 hook and the wheel from the
unpacked sdist (the order `python -m build` uses) with `pip wheel --no-build-isolation
--no-index`. The sdist must hold the whole project, so that pytest collects its tests without an
error. The wheel, with its `test` extra, is installed into a new virtual environment outside the
checkout by `pip install --no-index`, from wheels of the dependencies repacked from this
environment's installed copies: no network, no `--system-site-packages`, no path back into this
environment or the checkout. From there `kling demo`, `kling schema` (each printed schema
validated with no network) and `kling contract mock` run.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from referencing import Registry
from referencing.exceptions import NoSuchResource
from test_typed_api import BAD, GOOD

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PLUGINS = ("fal", "kling", "mock", "replicate", "segmind", "unifically", "wavespeed")


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
        ok: bool = True) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "KLING_CONFIG"))}
    proc = subprocess.run(args, cwd=cwd, env=env if env is not None else base, capture_output=True, text=True,
                          timeout=timeout)
    if ok:
        assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def shared(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Made once per test run in a folder of its own, by whichever xdist worker asks first; the
    others wait for it and reuse it (building and installing twice would only cost time)."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    folder = base / f"shared-{name}"
    with (base / f"shared-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "made.json"
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way
            folder.mkdir()
            made = make(folder)
            done.write_text(json.dumps(made))
        loaded: dict[str, Any] = json.loads(done.read_text())
        return loaded


@dataclass
class Built:
    sdist: Path
    sdist_names: list[str]  # paths inside the sdist, without its top folder
    unpacked: Path  # an unpacked copy nothing was built in
    wheel: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    made = shared(tmp_path_factory, "distributions", build)
    return Built(Path(made["sdist"]), made["names"], Path(made["unpacked"]), Path(made["wheel"]))


def build(folder: Path) -> dict[str, Any]:
    out = folder / "dist"
    out.mkdir()
    proc = run([PY, "-c", f"import setuptools.build_meta as b; print(b.build_sdist({str(out)!r}))"], cwd=ROOT)
    sdist = out / proc.stdout.strip().splitlines()[-1]
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tar:
        names = [m.name.removeprefix(f"{top}/") for m in tar.getmembers() if m.isfile()]
    folders = []
    for purpose in ("sdist-for-tests", "sdist-for-wheel"):
        dest = folder / purpose
        with tarfile.open(sdist) as tar:
            tar.extractall(dest, filter="data")
        folders.append(dest / top)
    wheels = folder / "wheel"
    run([PY, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check",
         "-w", str(wheels), str(folders[1])], cwd=folders[1].parent)
    (wheel,) = wheels.glob("kling_core-*.whl")
    return {"sdist": str(sdist), "names": names, "unpacked": str(folders[0]), "wheel": str(wheel)}


# --- the sdist ----------------------------------------------------------------------------------

def tracked_files() -> list[str] | None:
    try:
        proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return [n for n in proc.stdout.decode().split("\0") if n and (ROOT / n).exists()]  # not deleted meanwhile


def test_the_sdist_holds_the_whole_project(built: Built) -> None:
    names = set(built.sdist_names)
    for required in ("LICENSE", "README.md", "BENCHMARKS.md", "MANIFEST.in", "pyproject.toml", "noxfile.py",
                     "tests/conftest.py", "tests/mock_helpers.py", "tests/media_fixtures.py", "tests/fake_provider.py",
                     "contract_tests/test_mock.py", "contract_tests/test_example.py",
                     "examples/kling-example-provider/pyproject.toml", "docs/api.md", "docs/providers.md",
                     "schemas/job-status.schema.json", "benchmarks/bench_mock_edit.py",
                     "kling_core/schemas/job-status.schema.json", "kling_core/py.typed"):
        assert required in names, required
    tracked = tracked_files()
    if tracked is not None:  # in a git checkout: every tracked file but the CI harness's
        missing = [t for t in tracked if not t.startswith((".ci/", ".git")) and t not in names
                   and not any(n.startswith(t + "/") for n in names)]  # a symlinked folder holds files
        assert missing == []
    junk = [n for n in names if re.search(r"(__pycache__|\.pyc$|\.hypothesis/|\.egg-info/|^build/|\.mp4$)", n)
            and not n.startswith(("kling_core.egg-info/", "contract_tests/"))]
    assert junk == []


def test_pytest_collects_the_unpacked_sdist_without_errors(built: Built) -> None:
    src = built.unpacked
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    # The sdist's own code, not the checkout's: its package, its plugins, its example plugin.
    env["PYTHONPATH"] = os.pathsep.join(str(src / p) for p in ("", "plugins", "examples/kling-example-provider"))
    proc = run([PY, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=src, env=env, ok=False)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0 and "error" not in tail, proc.stdout[-3000:] + proc.stderr[-3000:]
    count = re.search(r"(\d+) tests? collected", tail)
    assert count and int(count.group(1)) > 500, tail
    assert f"{src}/tests" in proc.stdout or "tests/test_" in proc.stdout


def test_the_sdist_metadata(built: Built) -> None:
    with tarfile.open(built.sdist) as tar:
        member = tar.extractfile(f"{built.sdist.name.removesuffix('.tar.gz')}/PKG-INFO")
        assert member is not None
        check_metadata(member.read().decode())


# --- the wheel ----------------------------------------------------------------------------------

def check_metadata(text: str) -> None:
    assert "License-Expression: MIT" in text
    assert "License-File: LICENSE" in text
    assert "Author: kling-core contributors" in text
    assert "Project-URL: Repository, https://github.com/kling-core/kling-core" in text
    for classifier in ("Typing :: Typed", "Programming Language :: Python :: 3.11", "Environment :: Console"):
        assert f"Classifier: {classifier}" in text
    assert "Requires-Dist: platformdirs" in text


def test_the_wheel_carries_license_types_cassettes_and_schemas(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as zf:
        names = set(zf.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        check_metadata(zf.read(f"{info}/METADATA").decode())
        assert zf.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert {"kling_core/py.typed", "kling_core_plugins/py.typed", *(f"kling_core_plugins/{p}/py.typed" for p in PLUGINS)} <= names
    plugins = ROOT / "plugins"
    cassettes = {p.relative_to(plugins).as_posix() for p in plugins.glob("kling_core_plugins/*/cassettes/**/*.json")}
    assert len(cassettes) > 50 and cassettes <= names, sorted(cassettes - names)
    schemas = {f"kling_core/schemas/{p.relative_to(ROOT / 'schemas').as_posix()}" for p in (ROOT / "schemas").rglob("*.json")}
    assert len(schemas) > 20 and schemas <= names, sorted(schemas - names)
    assert not [n for n in names if n.startswith(("tests/", "contract_tests/", "examples/", "docs/"))]
    for plugin in PLUGINS:
        assert f"{plugin} = kling_core_plugins.{plugin}" in entry_points
    assert "kling = kling_core.cli:main" in entry_points


# --- installed into a new environment -------------------------------------------------------------

def _wanted(req: Requirement, extras: Iterable[str]) -> bool:
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*extras, ""))


def dependency_closure(requires: Iterable[str], extras: Iterable[str]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions ``requires`` needs (with ``extras``), transitively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [(Requirement(r), tuple(extras)) for r in requires]
    while todo:
        req, active = todo.pop()
        if not _wanted(req, active):
            continue
        name = canonicalize_name(req.name)
        if name == "kling-core":
            continue
        if name in found:
            continue
        dist = importlib.metadata.distribution(req.name)
        found[name] = dist
        todo += [(Requirement(r), tuple(req.extras)) for r in dist.requires or []]
    return found


def repack(dist: importlib.metadata.Distribution, dest: Path) -> Path:
    """A wheel of an installed distribution, from its RECORD (scripts are regenerated by pip)."""
    tags = [ln.split(":", 1)[1].strip() for ln in (dist.read_text("WHEEL") or "").splitlines() if ln.startswith("Tag:")]
    files = [f for f in dist.files or [] if not f.as_posix().startswith("../") and "__pycache__" not in f.parts]
    info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    parts = [list(dict.fromkeys(t.split("-")[i] for t in tags or ["py3-none-any"])) for i in range(3)]
    path = dest / f"{name}-{dist.version}-{'-'.join('.'.join(p) for p in parts)}.whl"  # py2.py3-none-any
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            arc, src = f.as_posix(), Path(str(dist.locate_file(f)))
            if arc in skip or not src.is_file():
                continue
            digest, size = hashlib.sha256(), 0
            with src.open("rb") as fh, zf.open(zipfile.ZipInfo.from_file(src, arc), "w") as out:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            record.append(f"{arc},sha256={base64.urlsafe_b64encode(digest.digest()).rstrip(b'=').decode()},{size}")
        zf.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return path


@dataclass
class Installed:
    bin: Path
    work: Path
    env: dict[str, str]
    site: Path

    def kling(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run([str(self.bin / "kling"), *args], cwd=self.work, env=self.env, timeout=timeout, ok=False)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    made = shared(tmp_path_factory, "installed", lambda folder: install(built, folder))
    return Installed(Path(made["bin"]), Path(made["work"]), made["env"], Path(made["site"]))


def install(built: Built, folder: Path) -> dict[str, Any]:
    with zipfile.ZipFile(built.wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    deps = folder / "dependency-wheels"
    deps.mkdir()
    closure = dependency_closure(requires, ["test"])
    assert {"platformdirs", "click", "av", "pytest", "jsonschema"} <= set(closure)
    for dist in closure.values():
        repack(dist, deps)
    home = folder / "new-user"
    home.mkdir()
    venv = home / "venv"
    run([PY, "-m", "venv", "--without-pip", str(venv)], cwd=home)
    py = venv / "bin" / "python"
    run([PY, "-m", "pip", "--python", str(py), "install", "-q", "--no-index", "--no-compile",
         "--disable-pip-version-check", "--find-links", str(deps), f"{built.wheel}[test]"], cwd=home)
    (home / "work").mkdir()
    env = {
        "PATH": os.pathsep.join([str(venv / "bin"), os.defpath]), "HOME": str(home), "LANG": "C.UTF-8",
        "KLING_STATE_DIR": str(home / "state"), "KLING_CACHE_DIR": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        **({"CI": os.environ["CI"]} if "CI" in os.environ else {}),
    }
    probe = run([str(py), "-c", "import json, sys, kling_core, kling_core_plugins, sysconfig; "
                 "print(json.dumps({'core': kling_core.__file__, 'plugins': kling_core_plugins.__file__, "
                 "'path': sys.path, 'site': sysconfig.get_paths()['purelib']}))"], cwd=home / "work", env=env)
    where = json.loads(probe.stdout)
    site = Path(where["site"])
    return {"bin": str(venv / "bin"), "work": str(home / "work"), "env": env, "site": str(site)}


def test_the_installed_copy_is_isolated(installed: Installed) -> None:
    proc = run([str(installed.bin / "python"), "-c",
                "import json, sys, importlib.metadata as m, kling_core, kling_core_plugins\n"
                "print(json.dumps({'core': kling_core.__file__, 'plugins': kling_core_plugins.__file__,\n"
                "  'path': sys.path, 'example': any(e.name == 'example' for e in m.entry_points(group='kling')),\n"
                "  'direct_url': m.distribution('kling-core').read_text('direct_url.json')}))"],
               cwd=installed.work, env=installed.env)
    where = json.loads(proc.stdout)
    assert where["core"].startswith(str(installed.site)) and where["plugins"].startswith(str(installed.site))
    outside = [p for p in where["path"] if p and (p.startswith(str(ROOT)) or ".venv" in p)]
    assert outside == []
    assert where["example"] is False  # the checkout's editable example plugin is not visible
    assert where["direct_url"] is None or "editable" not in where["direct_url"]


def test_kling_demo_schema_and_contract_run_from_the_wheel(installed: Installed) -> None:
    demo = installed.kling("demo", "--json", "-q")
    assert demo.returncode == 0, demo.stderr
    result = json.loads(demo.stdout)
    assert Path(result["video"]["path"]).is_file() and Path(result["video"]["path"]).stat().st_size > 1000
    assert Path(result["video"]["path"]).is_relative_to(installed.work)

    listed = installed.kling("schema")
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert {"edit-request", "job-status", "edit-result", "config", "cassette"} <= set(names)
    config = installed.kling("config", "show", "--json")
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["files"] == []
    cassette = json.loads(next((installed.site / "kling_core_plugins" / "fal" / "cassettes").glob("success-*.json"))
                          .read_text())
    documents: dict[str, list[Any]] = {
        "edit-result": [result],
        "job-status": [{"state": "succeeded", "job_id": result["job_id"], "provider": result["provider"],
                        "result": result},
                       {"state": "running", "job_id": "j", "provider": "mock", "progress": 54.0, "logs": []}],
        "edit-request": [{"prompt": "make it @Image1", "video": "clip.mp4", "images": ["a.png"]}],
        "config": [json.loads(config.stdout)["config"]],
        "cassette": [cassette],
        "providers/fal-queue-status": [{"status": "IN_QUEUE", "request_id": "r", "queue_position": 1,
                                        "response_url": "https://queue.fal.run/r",
                                        "status_url": "https://queue.fal.run/s",
                                        "cancel_url": "https://queue.fal.run/c"}],
    }
    lookups: list[str] = []

    def refuse(uri: str) -> Any:
        lookups.append(uri)
        raise NoSuchResource(ref=uri)

    for name, docs in documents.items():
        printed = installed.kling("schema", name)
        assert printed.returncode == 0, printed.stderr
        schema = json.loads(printed.stdout)
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema, registry=Registry(retrieve=refuse))
        for doc in docs:
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
            assert errors == [], f"{name}: {errors}"
    assert lookups == []

    contract = installed.kling("contract", "mock", timeout=300)
    assert contract.returncode == 0, contract.stdout[-3000:] + contract.stderr[-3000:]
    assert re.search(r"^mock\s.*\sok\s*$", contract.stdout, re.MULTILINE), contract.stdout[-2000:]


def test_mypy_strict_reads_the_installed_types(installed: Installed) -> None:
    # A user's script checked against the installed wheel (py.typed), not against the checkout.
    folder = installed.work / "typed"
    folder.mkdir(exist_ok=True)
    (folder / "good.py").write_text(textwrap.dedent(GOOD))
    (folder / "bad.py").write_text("import kling_core\n\n" + "\n".join(BAD) + "\n")
    (folder / "mypy.ini").write_text("[mypy]\n")
    proc = run([str(installed.bin / "python"), "-m", "mypy", "--strict", "--config-file", "mypy.ini",
                "--no-error-summary", "good.py", "bad.py"], cwd=folder, env=installed.env, ok=False)
    errors = [ln for ln in proc.stdout.splitlines() if ": error:" in ln]
    assert proc.returncode == 1 and errors, proc.stdout + proc.stderr
    assert [e for e in errors if not e.startswith("bad.py:")] == []
    assert {int(e.split(":")[1]) for e in errors} == set(range(3, 3 + len(BAD)))
