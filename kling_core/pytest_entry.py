"""The ``pytest11`` entry point ``kling``: the contract suite's option and the kit's fixtures.

Installing kling-core registers this module in every pytest run of that environment, so it
costs nothing until used: it imports no part of the test kit (:mod:`kling_core.testing`) at
load, and each fixture imports what it needs when a test first asks for it. The fixtures and
hooks are documented in docs/testing-your-app.md and docs/plugin-tutorial.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kling_core.provider import Provider
    from kling_core.testing.cassettes import Cassette
    from kling_core.testing.doubles import CallLog
    from kling_core.testing.media import SampleMedia


def _env_record() -> bool:
    return os.environ.get("KLING_RECORD", "").strip().lower() not in ("", "0", "false", "no")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "kling provider contract suite")
    group.addoption(
        "--kling-record",
        action="store_true",
        dest="kling_record",
        default=_env_record(),
        help="re-record cassettes against the live host (needs real keys, spends money; never in CI). "
        "Also enabled by KLING_RECORD=1.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kling_record: talks to a live host; only with --kling-record")
    config.addinivalue_line(
        "markers",
        "kling_emulator(**settings): settings for the kling_emulator fixture, e.g. render='fast', tls=True, "
        "fail={'fal': 'content_policy'}, any_key=True (see docs/testing-your-app.md)",
    )


@pytest.fixture(scope="session")
def kling_sample_media(tmp_path_factory: pytest.TempPathFactory) -> SampleMedia:
    """A 720x720, 24 fps, 3.2 s H.264 clip and a 400x400 PNG, rendered once per test run."""
    from kling_core.testing.media import render_sample_media

    return render_sample_media(tmp_path_factory.mktemp("kling-sample-media"))


@pytest.fixture
def kling_call_log() -> CallLog:
    """Collects every HTTP request a provider built by ``kling_provider_factory`` sends."""
    from kling_core.testing.doubles import CallLog

    return CallLog()


@pytest.fixture
def kling_provider_factory(tmp_path: Path, kling_call_log: CallLog) -> Callable[..., Provider]:
    """``factory(ProviderClass, transport=None, options=None, base_url=None)``: an instance with
    canary credentials, a no-wait sleep and, by default, a transport that refuses (and logs)
    every request, so a test proves "no network call" by checking ``kling_call_log``. Close
    what you open (``await provider.aclose()``) inside the event loop that used it."""
    from kling_core.testing.doubles import build_provider, canary_credentials, no_sleep, refusing_transport

    def factory(provider_cls: type[Provider], *, transport: Any = None, options: Any = None,
                base_url: str | None = None, environ: dict[str, str] | None = None) -> Provider:
        return build_provider(
            provider_cls,
            environ=environ if environ is not None else canary_credentials(provider_cls),
            transport=transport if transport is not None else refusing_transport(kling_call_log),
            options=options,
            base_url=base_url,
            sleep=no_sleep,
            work_dir=tmp_path,
        )

    return factory


@pytest.fixture
def kling_cassettes() -> Callable[[str | Path], list[Cassette]]:
    """``load(folder)``: every cassette of a folder, validated against the cassette schema."""
    from kling_core.testing.cassettes import load_cassettes

    return load_cassettes


@pytest.fixture
def kling_emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A running ``kling emulate`` on a free loopback port, its state in this test's tmp dir.

    Yields a :class:`kling_core.emulator.testing.RunningEmulator`: ``.urls["fal"]`` (base URL),
    ``.keys["fal"]`` (the test key it accepts), ``.kling_config()`` (a kling.toml pointing our
    providers at it), ``.environ()``, ``.fal_client()`` (fal-client pointed at it; needs
    ``tls=True``), ``.ca_file``, ``.lines`` (its log). Stopped after the test. Settings come
    from a ``@pytest.mark.kling_emulator(...)`` marker (``render``, ``tls``, ``fail``,
    ``hosts``, ``any_key``, ``queue_seconds``, ...). Needs the ``emulator`` extra.
    """
    from kling_core.emulator.testing import start_emulator  # lazily: the extra is optional

    marker = request.node.get_closest_marker("kling_emulator")
    options = dict(marker.kwargs) if marker is not None else {}
    running = start_emulator(tmp_path / "kling-emulator", **options)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def kling_mock_client(tmp_path: Path) -> Iterator[Any]:
    """An ``EditClient`` on the offline mock with its own job log and cache under this test's
    tmp dir; no ``kling.toml`` (here or in the user's config folder) is read."""
    from kling_core.client import EditClient
    from kling_core.config import KlingConfig
    from kling_core.joblog import JobLog
    from kling_core.settings import MediaSettings

    config = KlingConfig(media=MediaSettings(work_dir=str(tmp_path / "kling-cache")))
    client = EditClient(provider="mock", config=config, journal=JobLog(tmp_path / "kling-state"))
    try:
        yield client
    finally:
        client.close()
