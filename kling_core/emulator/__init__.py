"""``kling emulate``: the hosts' own APIs on loopback, backed by the mock's renders.

An unmodified client (fal-client, ``requests`` as in a host's examples, curl, our own
providers with ``base_url`` pointed here) talks to an :class:`Emulator` as it would to the
host: the same routes, status codes, bodies, error shapes and limits (see docs/emulator.md).
Jobs are rendered by the mock (real MP4s, the same bytes for the same request) and served by
the emulator itself; it never contacts a real host.

Needs the ``emulator`` extra (``pip install 'kling-core[emulator]'``): Starlette, uvicorn and
cryptography. Nothing here is imported by ``import kling_core``.
"""

from __future__ import annotations

from kling_core.emulator.hosts import HOSTS, PLANNED
from kling_core.emulator.server import Emulator
from kling_core.emulator.settings import RENDER_MODES, EmulatorSettings, HostSettings, load_settings_file

__all__ = ["HOSTS", "PLANNED", "RENDER_MODES", "Emulator", "EmulatorSettings", "HostSettings", "load_settings_file"]
