"""Developer sessions: `nox -s tests`, `nox -s contract`, `nox -s lint`, `nox -s typecheck`."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "contract", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (unit, media, schema agreement, contract replays)."""
    session.install("-e", ".[test]", "-e", "examples/kling-example-provider")
    session.run("python", "-m", "pytest", "-n", "2", *session.posargs)


@nox.session
def contract(session: nox.Session) -> None:
    """`kling contract` for every installed provider (or the ones named after --)."""
    session.install("-e", ".[test]", "-e", "examples/kling-example-provider")
    session.run("kling", "contract", *session.posargs)


@nox.session
def record(session: nox.Session) -> None:
    """Re-record cassettes against live hosts: needs real keys; never run in CI."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "contract_tests", "--kling-record", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "kling_core", "plugins", "tests", "contract_tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")
