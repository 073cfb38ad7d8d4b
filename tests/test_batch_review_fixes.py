"""Batch fixes from review: a result finished while --fail-fast stops is still reported, an
explicit client key reused for a changed line is refused, a JSONL manifest is recognised after a
BOM or comments, a JSON key given twice is a problem, and the non-loopback webhook message is
true for `kling batch`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import kling
from media_fixtures import sample  # noqa: F401 - fixture

from kling_core.batches import abatch, load_plan, runner
from kling_core.batches.manifest import detect_format, read_manifest
from kling_core.batches.plan import PlannedLine
from kling_core.batches.results import BatchLineResult
from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.errors import Problem, ValidationError
from kling_core.joblog import JobLog
from kling_core.media import SampleMedia


def _config(tmp: Path) -> Any:
    return config_from_document({"default_provider": "mock", "media": {"work_dir": str(tmp / "cache")},
                                 "providers": {"mock": {"options": {"latency": 0},
                                                        "poll": {"initial": 0.05, "max": 0.2}}}})


def _manifest(path: Path, *rows: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# --fail-fast: a finished result waiting for room in the results queue is not lost


def test_fail_fast_reports_a_saved_line_that_waited_to_be_queued(sample: SampleMedia, tmp_path: Path,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    m = _manifest(tmp_path / "m.jsonl", *({"video": str(sample.video), "prompt": f"p{i}"} for i in range(1, 5)))
    failed_queued = asyncio.Event()
    slow_done = asyncio.Event()

    async def fake_run_line(client: Any, line: PlannedLine, events: Any, timeout: Any,
                            jobs: Any = None) -> BatchLineResult:
        common: dict[str, Any] = dict(line=line.number, client_key=line.client_key, action="submitted",
                                      provider="mock", output=str(line.output), job_id=f"job-{line.number}")
        if line.number == 2:  # a slow job: it ends after the failed line was queued
            await failed_queued.wait()
            slow_done.set()
            return BatchLineResult(state="saved", **common)
        if line.number == 4:
            asyncio.get_running_loop().call_soon(failed_queued.set)
            return BatchLineResult(state="failed", error="the host refused it", **common)
        await asyncio.sleep(0)
        return BatchLineResult(state="saved", **common)

    monkeypatch.setattr(runner, "run_line", fake_run_line)

    async def go() -> list[BatchLineResult]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            got = []
            async for result in runner.run_plan(client, load_plan(client, m), concurrency=2, fail_fast=True):
                got.append(result)
                if len(got) == 1:  # a caller that takes its time with a result (the sync batch() API)
                    await slow_done.wait()
                    for _ in range(20):
                        await asyncio.sleep(0)
            return got

    got = asyncio.run(go())
    assert sorted(r.line for r in got) == [1, 2, 3, 4]  # each line reported once
    by_line = {r.line: (r.state, r.action, r.job_id) for r in got}
    assert by_line[2] == ("saved", "submitted", "job-2")
    assert by_line[4] == ("failed", "submitted", "job-4")


# An explicit client key already used for a different request


def test_explicit_key_reused_for_a_changed_line_is_refused(sample: SampleMedia, tmp_path: Path,  # noqa: F811
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_STATE_DIR", str(tmp_path / "state"))  # the CLI's job log below too
    row = {"video": str(sample.video), "prompt": "night", "client_key": "mine-1", "output": "o.mp4"}
    m = _manifest(tmp_path / "m.jsonl", row)

    async def run() -> list[BatchLineResult]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            return [r async for r in abatch(m, client=client)]

    async def actions() -> list[str]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            return [line.action for line in load_plan(client, m).lines]

    assert [r.state for r in asyncio.run(run())] == ["saved"]
    assert asyncio.run(actions()) == ["skip"]  # the same line under its key: saved, not refused

    _manifest(m, {**row, "prompt": "a completely different edit"})
    with pytest.raises(ValidationError) as info:
        asyncio.run(actions())
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("line 1, client_key", "'mine-1' was already used for a different request")]

    cfg = tmp_path / "kling.toml"
    cfg.write_text(f'default_provider = "mock"\n[media]\nwork_dir = "{tmp_path / "cache"}"\n')
    code, out, err = kling(capsys, "--config", str(cfg), "batch", str(m))
    assert code == 2, (out, err)
    assert "line 1, client_key" in err and "Traceback" not in err


# JSONL manifests without a JSONL suffix: a BOM or comments before the first line


@pytest.mark.parametrize("head", [b"\xef\xbb\xbf", b"# my edits\n\n", b"\xef\xbb\xbf# my edits\n"])
def test_jsonl_without_suffix_is_recognised_after_bom_or_comments(tmp_path: Path, head: bytes) -> None:
    m = tmp_path / "edits.txt"
    m.write_bytes(head + b'{"video": "a.mp4", "prompt": "night"}\n')
    assert detect_format(m, None) == "jsonl"
    lines, problems = read_manifest(m)
    assert problems == [] and [dict(line.fields) for line in lines] == [{"video": "a.mp4", "prompt": "night"}]


def test_csv_without_suffix_is_still_csv(tmp_path: Path) -> None:
    m = tmp_path / "edits"
    m.write_bytes(b"\xef\xbb\xbfvideo,prompt\na.mp4,night\n")
    assert detect_format(m, None) == "csv"


# A JSON key given twice


def test_jsonl_key_given_twice_is_a_problem_listed_with_the_others(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    m.write_text('{"video": "a.mp4", "prompt": "x", "output": "a.mp4", "output": "b.mp4"}\n'
                 '{"video": "b.mp4", "prompt": "y", "colour": "red"}\n'
                 '{"video": "c.mp4", "prompt": "z", "options": {"seed": 1, "seed": 2}}\n')
    _lines, problems = read_manifest(m)
    paths = [p.path for p in problems]
    assert Problem("line 1, output", "given twice") in problems
    assert Problem("line 3, seed", "given twice") in problems
    assert any(p.startswith("line 2, colour") for p in paths)


# The non-loopback webhook address message


def test_batch_webhooks_non_loopback_host_message_is_true_for_batch(sample: SampleMedia, tmp_path: Path,  # noqa: F811
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "kling.toml"
    cfg.write_text('default_provider = "mock"\n[webhooks]\nhost = "0.0.0.0"\nport = 0\n')
    m = _manifest(tmp_path / "m.jsonl", {"video": str(sample.video), "prompt": "x"})
    code, out, err = kling(capsys, "--config", str(cfg), "batch", str(m), "--webhooks")
    assert code == 2, (out, err)
    assert "0.0.0.0 is not a loopback address" in err
    # `kling batch` has no --public: the message must not offer it there
    assert "`kling batch --webhooks` always" in err and "`kling webhooks serve` unless --public" in err
    code, _out, err = kling(capsys, "batch", str(m), "--webhooks", "--public")
    assert code == 2 and "No such option" in err
