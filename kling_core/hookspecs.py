"""The hooks a ``kling`` plugin can implement (pluggy project name ``kling``).

Hooks are keyword-only and take callbacks, so the host keeps control of names and
collisions, and new arguments can be added later without breaking plugins (pluggy lets an
implementation accept fewer arguments than the spec).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("kling")
hookimpl = pluggy.HookimplMarker("kling")


@hookspec
def kling_register_providers(register: Any) -> None:
    """Offer providers: call ``register(ProviderClass, aliases=())`` once per provider.

    ``ProviderClass`` subclasses :class:`kling_core.provider.Provider`. A name that another
    plugin already registered is reported as a conflict, not silently replaced.
    """


@hookspec
def kling_register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``kling`` command group ``cli``.

    Plugins load lazily: list the plugin's entry point in the ``kling.hooks`` group too (same
    name and value), so ``kling --help`` lists its commands. Otherwise they still run (``kling
    NAME`` loads every plugin when no other command has that name) but are not listed.
    """


@hookspec(firstresult=True)
def kling_media_uploader(provider: str) -> Any:
    """Return an uploader for hosts that take URLs only, or None to pass.

    The uploader has ``async def upload(self, path: pathlib.Path, content_type: str) -> str``
    returning a public URL. The first plugin that answers wins. A plugin answering for
    another plugin's provider lists its entry point in ``kling.hooks`` so it is loaded.
    """


@hookspec
def kling_job_event(provider: str, job_id: str, state: str, status: Any) -> None:
    """Observe every status a job passes through (logging, metrics, progress). A plugin that
    observes other plugins' jobs lists its entry point in ``kling.hooks`` so it is loaded."""
