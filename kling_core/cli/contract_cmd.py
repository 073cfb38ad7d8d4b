"""``kling contract [PROVIDER...]``: run the provider contract suite for installed plugins."""

from __future__ import annotations

import importlib.util
import sys

import click

from kling_core.cli.common import State
from kling_core.cli.completion_cmd import complete_providers

_TEST_EXTRA = ("pytest", "respx", "hypothesis", "jsonschema")


@click.command("contract")
@click.argument("providers", nargs=-1, shell_complete=complete_providers)
@click.option("-k", "keyword", default=None, help="Only tests matching this pytest -k expression.")
@click.option("-x", "--exitfirst", is_flag=True, help="Stop at the first failure.")
@click.option("-v", "--verbose", is_flag=True, help="List every test.")
@click.option(
    "--record", is_flag=True,
    help="Re-record cassettes against the live hosts (needs real keys; spends money; never in CI).",
)
@click.pass_obj
def command(
    state: State, providers: tuple[str, ...], keyword: str | None, exitfirst: bool, verbose: bool, record: bool
) -> None:
    """Run the contract suite against installed providers (all when none is named).

    Behavioural half for every provider; for HTTP providers also the wire half (every cassette
    in the plugin's `cassettes/` folder replayed offline) and the property half. Prints a
    per-provider summary; exits 1 if anything failed or no test ran for a provider (a -k that
    matches nothing checks nothing). "(N inferred)" counts wire replays of cassettes with an
    interaction inferred from the host's docs ([INF]) rather than recorded.
    """
    missing = [m for m in _TEST_EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        click.echo(
            f"error: the contract suite needs {', '.join(missing)}: install kling-core[test] "
            "(pip install 'kling-core[test]')",
            err=True,
        )
        sys.exit(2)
    from kling_core.testing.runner import HALVES, run_contract, summary_rows

    host = state.host
    names = list(providers) or sorted({cls.name for cls in host.providers.values()})
    chosen = {name: host.provider_class(name) for name in names}  # ConfigError (exit 2) if unknown
    if not chosen:
        click.echo("error: no providers are installed", err=True)
        sys.exit(2)
    args = ["-q", "-rfE", "--tb=short"] if not verbose else ["-v", "-rfEs", "--tb=short"]
    if keyword:
        args += ["-k", keyword]
    if exitfirst:
        args.append("-x")
    code, tallies = run_contract(chosen, pytest_args=args, record=record)

    rows = summary_rows(tallies)
    header = ["provider", *HALVES, "result"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    click.echo("")
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    if any(t.inferred for t in tallies):
        click.echo(
            "(N inferred): wire replays of cassettes holding an interaction inferred from the host's "
            "docs ([INF]), not documented exactly or recorded"
        )
    failed = any(t.failed for t in tallies) or code not in (0, 5)
    idle = [t.name for t in tallies if not t.ran]
    # pytest exits 5 when nothing was collected: a check that checked nothing is not a pass. A
    # -k that selects part of the suite may leave some providers without a match (the mock has
    # no wire tests): that fails only when it matched nothing at all.
    fatal = bool(idle) and (not keyword or len(idle) == len(tallies))
    if idle and not failed:
        which = "any provider" if len(idle) == len(tallies) else ", ".join(idle)
        hint = f" (-k {keyword!r} matched none of its tests)" if keyword else ""
        click.echo(f"{'error' if fatal else 'note'}: no contract test ran for {which}{hint}", err=True)
    sys.exit(1 if failed or fatal else 0)
