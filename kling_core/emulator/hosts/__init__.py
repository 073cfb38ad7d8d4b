"""The emulated hosts by name, and the ones planned but not emulated yet."""

from __future__ import annotations

from kling_core.errors import ConfigError

# name -> "module:Class", imported only when the host is served.
HOSTS: dict[str, str] = {"fal": "kling_core.emulator.hosts.fal:FalHost",
                         "unifically": "kling_core.emulator.hosts.unifically:UnificallyHost",
                         "segmind": "kling_core.emulator.hosts.segmind:SegmindHost",
                         "replicate": "kling_core.emulator.hosts.replicate:ReplicateHost",
                         "kling": "kling_core.emulator.hosts.kling:KlingHost",
                         "wavespeed": "kling_core.emulator.hosts.wavespeed:WaveSpeedHost"}
# Hosts kling-core has providers for that the emulator does not speak yet (docs/emulator.md).
PLANNED: tuple[str, ...] = ()


def check_hosts(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The requested hosts, deduplicated; ConfigError for one not emulated (yet)."""
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name in PLANNED:
            raise ConfigError(f"{name} is not emulated yet (emulated: {', '.join(HOSTS)}; planned: "
                              f"{', '.join(PLANNED)}; see docs/emulator.md)", key="hosts")
        if name not in HOSTS:
            raise ConfigError(f"{name!r} is not a host the emulator knows (emulated: {', '.join(HOSTS)})", key="hosts")
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError("no host to emulate", key="hosts")
    return tuple(out)


def host_class(name: str) -> type:
    import importlib

    module, _, cls = HOSTS[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
