"""What the ``kling_emulator`` pytest fixture yields: a running emulator, its URLs and test keys.

Used through the fixture (``kling_core.testing.pytest_plugin``); importable on its own for
scripts and benchmarks::

    with start_emulator(tmp_path, render="fast") as emu:
        emu.urls["fal"], emu.keys["fal"]
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from kling_core.emulator.server import Emulator
from kling_core.emulator.settings import EmulatorSettings, HostSettings

# Defaults for tests: short schedules so a job takes a fraction of a second besides its render.
TEST_DEFAULTS: dict[str, Any] = {"queue_seconds": 0.2, "run_seconds": 0.2, "webhook_backoff": 0.2}
# host -> the variable its provider reads its one key from (fal and kling need more: see environ()).
KEY_VARIABLES: dict[str, str] = {"unifically": "UNIFICALLY_API_KEY", "segmind": "SEGMIND_API_KEY",
                                 "replicate": "REPLICATE_API_TOKEN", "wavespeed": "WAVESPEED_API_KEY"}


@attrs.define
class RunningEmulator:
    emulator: Emulator
    keys: dict[str, str]  # host -> a key the emulator accepts (the only one, unless any_key=True)
    state_dir: Path

    @property
    def urls(self) -> dict[str, str]:
        """host -> base URL, e.g. ``{"fal": "http://127.0.0.1:54321/fal"}``."""
        return self.emulator.urls

    @property
    def origin(self) -> str:
        return self.emulator.origin

    @property
    def ca_file(self) -> Path | None:
        """The CA to trust when started with ``tls=True`` (else None)."""
        return self.emulator.ca_file

    @property
    def lines(self) -> list[str]:
        """Every log line so far (one per request, plus webhook and error notes)."""
        return self.emulator.lines

    def hints(self) -> dict[str, Any]:
        return self.emulator.hints()

    def kling_config(self, *extra: str) -> str:
        """A kling.toml pointing every emulated host's provider here (keys from env variables)."""
        lines = ["[media]", "allow_private_urls = true", ""]
        for host, url in self.urls.items():
            lines += [f"[providers.{host}]", f'base_url = "{url}"']
            if host == "fal":  # fal's storage API and CDN are separate hosts upstream
                lines += ["[providers.fal.options]", f'storage_url = "{url}/rest"', f'cdn_url = "{url}/cdn"']
            lines.append("")
        return "\n".join([*lines, *extra]) + "\n"

    def environ(self) -> dict[str, str]:
        """Environment for a client process: the keys (FAL_KEY, ...) and, with TLS, SSL_CERT_FILE."""
        env: dict[str, str] = {}
        if "fal" in self.keys:
            env["FAL_KEY"] = self.keys["fal"]
            hostport = self.urls["fal"].split("://", 1)[1]
            env["FAL_QUEUE_RUN_HOST"] = hostport
            env["FAL_RUN_HOST"] = f"{hostport}/run"
        env.update({KEY_VARIABLES[host]: key for host, key in self.keys.items() if host in KEY_VARIABLES})
        if "kling" in self.keys:  # an ACCESS:SECRET pair
            env["KLING_ACCESS_KEY"], _, env["KLING_SECRET_KEY"] = self.keys["kling"].partition(":")
        if self.ca_file is not None:
            env["SSL_CERT_FILE"] = str(self.ca_file)
            env["REQUESTS_CA_BUNDLE"] = str(self.ca_file)
        return env

    @contextlib.contextmanager
    def fal_client(self) -> Iterator[Any]:
        """fal-client (imported here) pointed at this emulator for the block; needs ``tls=True``.

        fal-client builds its URLs from FAL_RUN_HOST/FAL_QUEUE_RUN_HOST when it is *imported*
        and has its storage URLs hard-coded (``REST_URL``, ``CDN_URL``), so in-process this sets
        the module constants it reads, the key and SSL_CERT_FILE, and restores them afterwards.
        """
        import fal_client.client as fc

        if self.ca_file is None:
            raise RuntimeError("fal-client speaks only https: start the emulator with tls=True")
        base = self.urls["fal"]
        hostport = base.split("://", 1)[1]
        patches = {"QUEUE_URL_FORMAT": f"https://{hostport}/", "RUN_URL_FORMAT": f"https://{hostport}/run/",
                   "REST_URL": f"{base}/rest", "CDN_URL": f"{base}/cdn"}
        saved = {name: getattr(fc, name) for name in patches}
        env = {"SSL_CERT_FILE": str(self.ca_file), "FAL_KEY": self.keys["fal"]}
        saved_env = {name: os.environ.get(name) for name in env}
        for name, value in patches.items():
            setattr(fc, name, value)
        os.environ.update(env)
        try:
            yield fc.SyncClient(key=self.keys["fal"])
        finally:
            for name, value in saved.items():
                setattr(fc, name, value)
            for name, old in saved_env.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old

    def stop(self) -> None:
        self.emulator.stop()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(state_dir: Path, *, hosts: tuple[str, ...] | list[str] = ("fal",), any_key: bool = False,
                   fail: Mapping[str, str] | None = None, log: Any = None, **settings: Any) -> RunningEmulator:
    """Start an emulator on a free loopback port with its state in ``state_dir``.

    ``settings`` are :class:`EmulatorSettings` fields (``render="fast"``, ``tls=True``, ...);
    ``fail`` maps a host to a scripted failure for all its jobs; each host gets a fresh test
    key, the only one it accepts unless ``any_key``.
    """
    keys = {host: f"emulator-{host}-{secrets.token_hex(8)}" for host in hosts}
    if "kling" in keys:  # Kling signs tokens with a secret: the key is an ACCESS:SECRET pair
        keys["kling"] += f":{secrets.token_hex(16)}"
    host_settings = {host: HostSettings(fail=(fail or {}).get(host), keys=() if any_key else (keys[host],))
                     for host in hosts}
    values = {**TEST_DEFAULTS, **settings}
    emulator_settings = EmulatorSettings(hosts=tuple(hosts), state_dir=state_dir, host_settings=host_settings,
                                         **values)
    emulator = Emulator(emulator_settings, port=0, log=log or (lambda line: None), shutdown_timeout=1)
    emulator.start()
    return RunningEmulator(emulator=emulator, keys=keys, state_dir=state_dir)
