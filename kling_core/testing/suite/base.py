"""What every part of the contract suite shares: which provider, how to build it, how to fail."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kling_core.contract.models import EditRequest
from kling_core.preflight import check_request
from kling_core.provider import JobHandle, Provider
from kling_core.testing.cassettes import Cassette, cassette_files, load_cassette
from kling_core.testing.doubles import (
    CallLog,
    build_provider,
    canary_credentials,
    no_sleep,
    refusing_transport,
)
from kling_core.testing.replay import ContractFailure


@functools.cache
def _installed_provider(name: str) -> type[Provider]:
    from kling_core.plugins import PluginHost

    return PluginHost().provider_class(name)


def resolve_installed(name: str) -> type[Provider]:
    """The installed provider class registered under ``name`` (ConfigError if none)."""
    return _installed_provider(name)


def _package_folders(klass: type) -> list[Path]:
    """The folder of the module defining ``klass``, then each enclosing package's folder."""
    module = sys.modules.get(klass.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return []
    parts = klass.__module__.split(".")
    folder = Path(file).parent
    levels = len(parts) if Path(file).name == "__init__.py" else max(len(parts) - 1, 1)
    return [folder.parents[i - 1] if i else folder for i in range(levels)]


def default_cassette_dir(provider_cls: type[Provider]) -> Path:
    """``Provider.cassette_dir`` if set, else the nearest ``cassettes/`` folder of its package.

    Nearest first (``pkg/fal/cassettes`` before ``pkg/cassettes``), so several plugins can
    share one top-level package; base classes are tried too (a subclass in a test module).
    """
    explicit = getattr(provider_cls, "cassette_dir", None)
    if explicit:
        return Path(explicit)
    candidates = [
        folder / "cassettes"
        for klass in provider_cls.__mro__
        if klass.__module__.split(".")[0] not in ("kling_core", "builtins", "abc")
        for folder in _package_folders(klass)
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0] if candidates else Path("cassettes"))


def raise_if(problems: Iterable[str], title: str) -> None:
    listed = list(problems)
    if listed:
        raise ContractFailure(title + ":\n" + "\n".join(f"  - {p}" for p in listed))


async def submit_once(provider: Provider, request: EditRequest) -> JobHandle:
    """The client's checks, prepare and one submit, then close: a refused request stops early."""
    try:
        check_request(provider, request)
        return await provider.submit(await provider.prepare(request))
    finally:
        await provider.aclose()


class SuiteBase:
    """The provider under test and how to build it; every mixin of the suite derives from it."""

    provider_name: ClassVar[str]
    # Set to test a class directly instead of the installed plugin of that name.
    provider_cls: ClassVar[type[Provider] | None] = None
    # A well-formed job id for this host, for checks that need one without a job.
    sample_job_id: ClassVar[str] = "job-0001"

    @classmethod
    def kling_provider_cls(cls) -> type[Provider]:
        if cls.provider_cls is not None:
            return cls.provider_cls
        return _installed_provider(cls.provider_name)

    def kling_provider(self, tmp_path: Path, log: CallLog | None = None, **options: Any) -> Provider:
        """An instance with canary keys and a transport that refuses (and logs) every request."""
        cls = self.kling_provider_cls()
        return build_provider(
            cls,
            environ=canary_credentials(cls),
            transport=refusing_transport(log if log is not None else CallLog()),
            options=options or None,
            sleep=no_sleep,
            work_dir=tmp_path,
        )


def _scenario_id(path: Path) -> str:
    try:
        return str(json.loads(path.read_text("utf-8"))["scenario"])
    except Exception:
        return path.stem


class CassetteSuite(SuiteBase):
    """A suite whose provider's wire format is recorded as cassettes (one JSON file each)."""

    # Default: the nearest ``cassettes/`` folder of the provider's package.
    cassette_dir: ClassVar[str | Path | None] = None

    @classmethod
    def kling_cassette_dir(cls) -> Path:
        if cls.cassette_dir is not None:
            return Path(cls.cassette_dir)
        return default_cassette_dir(cls.kling_provider_cls())

    @classmethod
    def kling_cassettes(cls) -> list[Cassette]:
        return [load_cassette(p) for p in cassette_files(cls.kling_cassette_dir())]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One ``kling_cassette_path`` per cassette file, named by its scenario."""
        if "kling_cassette_path" not in metafunc.fixturenames:
            return
        try:
            files = cassette_files(self.kling_cassette_dir())
        except Exception:
            files = []  # test_wire_has_cassettes says why
        if files:
            metafunc.parametrize("kling_cassette_path", files, ids=[_scenario_id(p) for p in files])
        else:
            skip = pytest.mark.skip(reason="no cassettes to replay")
            metafunc.parametrize("kling_cassette_path", [pytest.param(None, marks=skip)], ids=["none"])
