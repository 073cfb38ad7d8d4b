"""Find a host's documented JSON Schema by file name.

First-party schemas live in ``kling_core/schemas/providers/``; a third-party plugin ships its
own in ``<package>/schemas/`` (or names a folder with a ``schema_dir`` class attribute).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from kling_core.provider import Provider


def schema_dirs(provider_cls: type[Provider] | None = None) -> list[Path]:
    dirs: list[Path] = []
    if provider_cls is not None:
        explicit = getattr(provider_cls, "schema_dir", None)
        if explicit:
            dirs.append(Path(explicit))
        # The package of the class and of each plugin base it derives from (a subclass in a
        # test module still finds its plugin's schemas).
        for klass in provider_cls.__mro__:
            top = klass.__module__.split(".")[0]
            if top in ("kling_core", "builtins", "abc"):
                continue
            package = importlib.import_module(top)
            d = Path(package.__file__).parent / "schemas" if package.__file__ else None
            if d is not None and d not in dirs:
                dirs.append(d)
    dirs.append(Path(str(resources.files("kling_core") / "schemas" / "providers")))
    return dirs


def provider_schema(name: str, provider_cls: type[Provider] | None = None) -> Mapping[str, Any]:
    """The parsed schema file ``name``; FileNotFoundError lists where it was looked for."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"schema names are bare file names, got {name!r}")
    tried = []
    for d in schema_dirs(provider_cls):
        p = d / name
        tried.append(str(p))
        if p.is_file():
            doc: Mapping[str, Any] = json.loads(p.read_text("utf-8"))
            return doc
    raise FileNotFoundError(f"schema {name!r} not found; looked in: {', '.join(tried)}")
