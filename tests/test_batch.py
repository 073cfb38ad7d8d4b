"""Batches on the offline mock: manifest fields (JSONL and CSV), how a line is identified across runs,
resuming, --fail-fast, a cancelled batch picked up again, the Python API, --dry-run and --max-cost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from media_fixtures import sample  # noqa: F401 - fixture

import kling_core
from kling_core.batches import BatchEvents, abatch, load_plan
from kling_core.batches.manifest import read_manifest
from kling_core.client import AsyncEditClient, EditClient
from kling_core.config import config_from_document
from kling_core.errors import ValidationError
from kling_core.joblog import JobLog, canonical
from kling_core.media import SampleMedia


def _config(tmp: Path, *, latency: float = 0) -> Any:
    return config_from_document({"default_provider": "mock", "media": {"work_dir": str(tmp / "cache")},
                                 "providers": {"mock": {"options": {"latency": latency},
                                                        "poll": {"initial": 0.05, "max": 0.2}}}})


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- manifest fields ------------------------------------------------------------------------------
def test_csv_cells_take_lists_options_and_elements(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,prompt,images,elements,options,keep_audio,duration,quality\n"
                        'a.mp4,"night, @Image1",x.png|y.png,"f.png:r1.png,r2.png|g.png:r3.png",seed=3|tag=hi,yes,5,std\n'
                        "b.mp4,day,,,,,,\n")
    lines, problems = read_manifest(manifest)
    assert problems == []
    first, second = lines
    assert first.number == 2 and second.number == 3
    assert first.fields["images"] == ["x.png", "y.png"] and first.fields["prompt"] == "night, @Image1"
    assert first.fields["elements"] == [{"frontal_image": "f.png", "reference_images": ["r1.png", "r2.png"]},
                                        {"frontal_image": "g.png", "reference_images": ["r3.png"]}]
    assert first.fields["options"] == {"seed": 3, "tag": "hi"}
    assert first.fields["keep_audio"] is True and first.fields["duration"] == 5
    assert second.fields == {"video": "b.mp4", "prompt": "day"}  # empty cells: unset


def test_every_bad_field_of_every_line_is_named(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"video": "a.mp4", "prompt": "ok"}\n\n[1]\n{"video": 3, "prompt": "x", "keep_audio": "no"}\n'
                        '{"prompt": "x", "images": "a.png", "elements": [{"frontal_image": "f"}, 7], "colour": 1}\n')
    _lines, problems = read_manifest(manifest)
    text = [str(p) for p in problems]
    assert "line 3: must be a JSON object, not list" in text
    assert "line 4, video: must be a string, not int" in text
    assert "line 4, keep_audio: must be true or false, not 'no'" in text
    assert "line 5, video: is required" in text
    assert any(t.startswith("line 5, colour: unknown field") for t in text)
    assert any(t.startswith("line 5, images: must be a list") for t in text)
    assert any(t.startswith("line 5, elements[1]: must be an object") for t in text)


def test_jsonl_lines_end_at_newlines_only_and_comments_are_skipped(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    # U+2028 and NEL are allowed raw inside a JSON string: they neither split a line nor shift its number.
    manifest.write_text('# edits for Monday\n{"video": "a.mp4", "prompt": "one\u2028two\u0085three"}\r\n'
                        '  # another comment\n{"video": "b.mp4", "prompt": "x", "colour": 1}\n', encoding="utf-8")
    lines, problems = read_manifest(manifest)
    assert [(ln.number, ln.fields["prompt"]) for ln in lines] == [(2, "one\u2028two\u0085three"), (4, "x")]
    assert [p.path for p in problems] == ["line 4, colour"]


def test_empty_values_are_named_once_each(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"video": "", "prompt": "a"}\n{"video": "  ", "prompt": "a", "images": ["x.png", " "]}\n'
                        '{"video": "a.mp4", "prompt": " "}\n')
    lines, problems = read_manifest(manifest)
    assert [str(p) for p in problems] == ["line 1, video: is required", "line 2, video: is empty",
                                          "line 2, images[1]: is empty", "line 3, prompt: is empty"]
    assert lines == []  # none goes on to the request checks (which would add "not a regular file")


def test_an_unknown_csv_column_is_named_once_on_the_header(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,promt,prompt\n" + "".join(f"a{i}.mp4,typo,p\n" for i in range(5)))
    lines, problems = read_manifest(manifest)
    assert [str(p).split(" (")[0] for p in problems] == ["line 1, promt: unknown field in the header"]
    assert len(lines) == 5 and "promt" not in lines[0].fields


def test_unreadable_and_empty_manifests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "empty.csv").write_text("video,prompt\n")
    with pytest.raises(ValidationError, match="no edits"):
        read_manifest(tmp_path / "empty.csv")
    (tmp_path / "latin.jsonl").write_bytes(b'{"video": "\xe9"}\n')
    with pytest.raises(ValidationError, match="not UTF-8"):
        read_manifest(tmp_path / "latin.jsonl")


# -- identity across runs -------------------------------------------------------------------------
def test_a_lines_key_follows_its_content_and_output_not_its_position(sample: SampleMedia,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    video = str(sample.video)
    rows = [{"video": video, "prompt": "night"}, {"video": video, "prompt": "day", "output": "o/day.mp4"},
            {"video": video, "prompt": "night"}, {"video": video, "prompt": "x", "client_key": "mine-1"}]

    async def keys(manifest: Path) -> dict[str, tuple[str, str]]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            plan = load_plan(client, manifest)
        return {f"{ln.request.prompt}|{ln.output.name}": (ln.client_key, ln.action) for ln in plan.lines}

    first = asyncio.run(keys(_write(tmp_path / "m.jsonl", rows)))
    moved = asyncio.run(keys(_write(tmp_path / "m.jsonl", [rows[1], rows[3], rows[0], rows[2]])))
    assert first == moved and len(first) == 4  # identical lines get their own outputs and keys
    assert first["x|" + next(k.split("|")[1] for k in first if k.startswith("x|"))][0] == "mine-1"
    assert all(action == "submit" for _key, action in first.values())
    edited = asyncio.run(keys(_write(tmp_path / "m.jsonl", [{**rows[1], "prompt": "dusk"}])))
    assert edited["dusk|day.mp4"][0] != first["day|day.mp4"][0]  # new content: a new job
    assert all(k.startswith("batch-") for k, _a in first.values() if k != "mine-1")


def test_two_lines_saving_to_one_output_are_refused(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": "a", "output": "o.mp4"},
                                             {"video": str(sample.video), "prompt": "b", "output": "./o.mp4"}])

    async def plan() -> None:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            load_plan(client, manifest)

    with pytest.raises(ValidationError) as info:
        asyncio.run(plan())
    assert [str(p) for p in info.value.problems] == [f"line 2, output: {tmp_path / 'o.mp4'} is also the output of line 1"]


def test_an_output_that_another_line_reads_is_refused(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "x.mp4").write_bytes(sample.video.read_bytes())
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": "a", "output": "x.mp4"},
                                             {"video": "x.mp4", "prompt": "b", "output": "y.mp4"}])

    async def plan() -> None:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            load_plan(client, manifest)

    with pytest.raises(ValidationError) as info:
        asyncio.run(plan())
    assert [str(p) for p in info.value.problems] == [
        f"line 1, output: {tmp_path / 'x.mp4'} is an input of line 2 (saving would replace it while that line may "
        "read it)"]


def test_a_provider_list_the_client_would_refuse_is_a_line_problem(sample: SampleMedia,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    video = str(sample.video)
    manifest = _write(tmp_path / "m.jsonl", [{"video": video, "prompt": "a", "provider": "nosuch,mock"},
                                             {"video": video, "prompt": "b", "provider": "mock,mock"},
                                             {"video": video, "prompt": "c", "provider": "mock"}])

    async def plan() -> None:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            load_plan(client, manifest)

    with pytest.raises(ValidationError) as info:
        asyncio.run(plan())
    found = [(p.path, p.message.split(" (")[0]) for p in info.value.problems]
    assert found == [("line 1, provider", "unknown provider 'nosuch'"),
                     ("line 2, provider", "'mock,mock': 'mock' is listed twice")]


# -- running ------------------------------------------------------------------------------------
def test_python_api_saves_every_line_and_a_rerun_skips_them(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": p, "quality": "std"}
                                             for p in ("night", "winter")])
    with EditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
        results = list(kling_core.batch(manifest, client=client, concurrency=2))
        assert sorted(r.line for r in results) == [1, 2]
        assert all(r.ok and r.action == "submitted" and Path(r.output).is_file() for r in results)
        assert all(Path(r.output).parent == tmp_path / "m-outputs" for r in results)
        again = list(kling_core.batch(manifest, client=client))
        assert [(r.action, r.state) for r in again] == [("skipped", "saved")] * 2
        assert len(client.jobs(limit=0)) == 2  # one job per line, over both runs


def test_fail_fast_stops_and_a_rerun_skips_what_failed_on_the_host(sample: SampleMedia,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    rows = [{"video": str(sample.video), "prompt": f"p{i}", "quality": "std", "options": {"fail": "content_policy"}}
            for i in range(3)]
    manifest = _write(tmp_path / "m.jsonl", rows)

    async def run(**kw: Any) -> list[Any]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            return [r async for r in abatch(manifest, client=client, concurrency=1, **kw)]

    first = asyncio.run(run(fail_fast=True))
    assert [(r.line, r.state) for r in first] == [(1, "failed"), (2, "not_run"), (3, "not_run")]
    assert first[0].error_type == "ContentPolicyError" and first[0].job_id
    second = asyncio.run(run())
    by_line = {r.line: (r.action, r.state) for r in second}
    assert by_line == {1: ("skipped", "failed"), 2: ("submitted", "failed"), 3: ("submitted", "failed")}


def test_fail_fast_reports_the_job_of_a_line_it_stopped_waiting_for(sample: SampleMedia,  # noqa: F811
                                                                     tmp_path: Path) -> None:
    rows = [{"video": str(sample.video), "prompt": "slow", "quality": "std", "options": {"latency": 1.5}},
            {"video": str(sample.video), "prompt": "bad", "quality": "std", "options": {"fail": "content_policy"}}]
    manifest = _write(tmp_path / "m.jsonl", rows)

    async def run(**kw: Any) -> dict[int, Any]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            return {r.line: r async for r in abatch(manifest, client=client, concurrency=2, **kw)}

    first = asyncio.run(run(fail_fast=True))
    slow = first[1]
    assert first[2].state == "failed" and slow.state == "not_run"
    # Submitted before the stop: the result says so and names its job (it stays in the job log).
    assert slow.action == "submitted" and slow.job_id and "not waited for" in (slow.error or "")
    again = asyncio.run(run())
    assert (again[1].action, again[1].state, again[1].job_id) == ("picked_up", "saved", slow.job_id)


def test_leaving_the_loop_early_stops_the_batchs_workers_at_once(sample: SampleMedia,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    import contextlib

    rows = [{"video": str(sample.video), "prompt": "quick", "quality": "std"},
            {"video": str(sample.video), "prompt": "slow", "quality": "std", "options": {"latency": 5}}]
    manifest = _write(tmp_path / "m.jsonl", rows)

    async def run() -> list[str]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            async with contextlib.aclosing(abatch(manifest, client=client, concurrency=2)) as results:
                async for _result in results:
                    break
            # The batch's workers are stopped when its generator is closed, not left to the GC.
            return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("kling-batch-")
                    and not t.done()]

    assert asyncio.run(run()) == []


def test_a_submit_the_host_refused_is_submitted_again(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": "p", "quality": "std",
                                              "options": {"fail": "rate_limited"}}])

    async def run() -> tuple[Any, str]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            results = [r async for r in abatch(manifest, client=client)]
            return results[0], load_plan(client, manifest).lines[0].action

    result, next_action = asyncio.run(run())
    assert result.state == "failed" and result.error_type == "RateLimitedError" and result.job_id is None
    assert next_action == "submit"  # no job was made: submitting again cannot pay twice


def test_a_cancelled_batch_leaves_its_jobs_for_the_next_run(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": p, "quality": "std"}
                                             for p in ("a", "b", "c")])

    class Bound(BatchEvents):
        def __init__(self) -> None:
            self.bound_lines: list[int] = []
            self.all_bound = asyncio.Event()

        def bound(self, line: Any, started: Any) -> None:
            self.bound_lines.append(line.number)
            if len(self.bound_lines) == 2:
                self.all_bound.set()

    async def interrupted() -> list[int]:
        events = Bound()
        async with AsyncEditClient(config=_config(tmp_path, latency=2), journal=JobLog(tmp_path / "state")) as client:
            async def consume() -> None:
                async for _r in abatch(manifest, client=client, concurrency=2, events=events):
                    pass

            task = asyncio.create_task(consume())
            await asyncio.wait_for(events.all_bound.wait(), 60)
            task.cancel()  # Ctrl-C
            with pytest.raises(asyncio.CancelledError):
                await task
        return events.bound_lines

    started = asyncio.run(interrupted())
    assert len(started) == 2
    log = JobLog(tmp_path / "state")
    assert {r.state for r in log.list(limit=0)} <= {"submitted", "running"} and len(log.list(limit=0)) == 2

    async def rerun() -> list[Any]:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            return [r async for r in abatch(manifest, client=client, concurrency=3)]

    results = asyncio.run(rerun())
    assert all(r.ok for r in results)
    assert sorted(r.line for r in results if r.action == "picked_up") == sorted(started)
    assert len(log.list(limit=0)) == 3  # the third line submitted once; the two picked up, not resubmitted


# -- the command ----------------------------------------------------------------------------------
def _kling(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "KLING_CONFIG_DIR": str(cwd / "user-config"), "KLING_STATE_DIR": str(cwd / "state"),
            "KLING_CACHE_DIR": str(cwd / "cache"), **env}
    return subprocess.run([sys.executable, "-m", "kling_core", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120, check=False)


def test_dry_run_shows_the_plan_and_submits_nothing(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": "night", "quality": "std",
                                              "provider": "fal"}])
    done = _kling(["batch", str(manifest), "--dry-run"], tmp_path, FAL_KEY="fake-key:fake")
    assert done.returncode == 0, done.stderr
    assert "1 to submit, 0 to pick up, 0 to skip" in done.stdout
    assert "$" in done.stdout.splitlines()[2]  # the line's estimate
    as_json = json.loads(_kling(["batch", str(manifest), "--dry-run", "--json"], tmp_path,
                                FAL_KEY="fake-key:fake").stdout)
    assert as_json["lines"][0]["action"] == "submit" and as_json["counts"] == {"submit": 1, "pickup": 0, "skip": 0}
    assert JobLog(tmp_path / "state").list(limit=0) == []


def test_max_cost_refuses_the_batch_before_any_submit(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": "night", "provider": "fal"}])
    done = _kling(["batch", str(manifest), "--max-cost", "0.01"], tmp_path, FAL_KEY="fake-key:fake")
    assert done.returncode == 2, done.stderr
    assert "max_cost" in done.stderr and "nothing was submitted" in done.stderr
    # The dry run says the same, with the same exit code.
    dry = _kling(["batch", str(manifest), "--max-cost", "0.01", "--dry-run", "--json"], tmp_path,
                 FAL_KEY="fake-key:fake")
    assert dry.returncode == 2 and json.loads(dry.stdout)["max_cost"]["within"] is False
    assert JobLog(tmp_path / "state").list(limit=0) == []


def test_results_may_not_overwrite_the_manifest_an_input_or_an_output(sample: SampleMedia,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    from kling_core.cli.batch_cmd import open_results

    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": "a", "output": "o/a.mp4"}])

    async def plan() -> Any:
        async with AsyncEditClient(config=_config(tmp_path), journal=JobLog(tmp_path / "state")) as client:
            return load_plan(client, manifest)

    loaded = asyncio.run(plan())
    before = manifest.read_bytes()
    for raw, what in ((str(tmp_path / "." / "m.jsonl"), "the manifest"), (str(tmp_path / "x" / ".." / "o" / "a.mp4"),
                      "the output of line 1"), (str(sample.video), "an input of line 1")):
        with pytest.raises(ValidationError, match=rf"results: .* is {what}"):
            open_results(raw, loaded)
    with pytest.raises(ValidationError, match=r"results: .*cannot write it"):
        open_results(str(manifest / "r.jsonl"), loaded)  # a file as a folder: exit 2, not a traceback
    assert manifest.read_bytes() == before
    open_results(str(tmp_path / "r.jsonl"), loaded).close()


def test_a_fallback_list_is_priced_at_its_dearest_usable_host(tmp_path: Path) -> None:
    from kling_core.cli.batch_cmd import check_budget, estimates

    manifest = _write(tmp_path / "m.jsonl", [{"video": "https://cdn.example/a.mp4", "prompt": "a", "quality": "std",
                                              "provider": "unifically,fal"}])

    def priced(environ: dict[str, str]) -> tuple[str, float]:
        async def go() -> tuple[str, float]:
            async with AsyncEditClient(config=_config(tmp_path), environ=environ,
                                       journal=JobLog(tmp_path / "state")) as client:
                plan = load_plan(client, manifest)
                est = (estimates(client, plan.lines) or {})[1]
                if est.provider == "fal":  # the first host's price alone would pass this budget
                    with pytest.raises(ValidationError, match="max_cost"):
                        check_budget(plan, estimates(client, plan.lines), 0.5)
                return est.provider, est.usd
        return asyncio.run(go())

    both = {"UNIFICALLY_API_KEY": "u-key", "FAL_KEY": "f-key:f"}
    assert priced(both)[0] == "fal" and priced(both)[1] > 1  # the run may land on either host
    assert priced({"FAL_KEY": "f-key:f"})[0] == "fal"  # unifically would be passed over: no key
    assert priced({"UNIFICALLY_API_KEY": "u-key"}) == ("unifically", pytest.approx(0.4824))


def test_which_hosts_price_a_fallback_line_is_decided_per_line(tmp_path: Path) -> None:
    """Two lines alike in what pricing reads: fal refuses the first's aspect_ratio (edit mode),
    not the second; the second may land on fal, so it is priced there, whatever came before."""
    from kling_core.cli.batch_cmd import check_budget, estimates

    line = {"video": "https://cdn.example/a.mp4", "prompt": "a", "quality": "pro", "provider": "fal,unifically"}
    manifest = _write(tmp_path / "m.jsonl", [{**line, "aspect_ratio": "16:9"}, line])

    async def go() -> None:
        async with AsyncEditClient(config=_config(tmp_path), environ={"UNIFICALLY_API_KEY": "u", "FAL_KEY": "f:f"},
                                   journal=JobLog(tmp_path / "state")) as client:
            plan = load_plan(client, manifest)
            found = estimates(client, plan.lines)
            assert [found[n].provider for n in (1, 2)] == ["unifically", "fal"]
            with pytest.raises(ValidationError, match="max_cost"):  # line 2 alone may cost more on fal
                check_budget(plan, found, 1.0)

    asyncio.run(go())


def test_a_fallback_lines_job_on_a_later_host_is_found_by_the_plan(sample: SampleMedia,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    manifest = _write(tmp_path / "m.jsonl", [{"video": "https://cdn.example/a.mp4", "prompt": "a", "quality": "std",
                                              "provider": "unifically,fal", "output": "o.mp4", "client_key": "k1"}])
    log = JobLog(tmp_path / "state")
    out.write_bytes(sample.video.read_bytes())

    async def plan() -> Any:
        async with AsyncEditClient(config=_config(tmp_path), environ={"FAL_KEY": "f:f", "UNIFICALLY_API_KEY": "u"},
                                   journal=log) as client:
            # The first host refused the submit (no job made); the second made the job and saved it
            # (logged with the line's request: an explicit key used for another request is refused).
            request = client.request("https://cdn.example/a.mp4", "a", provider="unifically", quality="std")
            log.claim(provider="unifically", model="kling-o1", request={}, request_sha256="x", client_key="k1")
            log.transition("k1", "failed", error="refused")
            log.claim(provider="fal", model="kling-o1", request={},
                      request_sha256=canonical(request, "fal").request_sha256, client_key="k1.fal")
            log.transition("k1.fal", "submitted", job_id="fal-job-1")
            log.transition("k1.fal", "saved", output=str(out))
            return load_plan(client, manifest)

    line = asyncio.run(plan()).lines[0]
    assert (line.action, line.prior_state, line.prior_job_id) == ("skip", "saved", "fal-job-1")


def test_bad_options_exit_2_naming_each(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text('{"video": "a.mp4", "prompt": "x"}\n')
    done = _kling(["batch", "m.jsonl", "--concurrency", "0", "--max-cost", "lots", "--timeout", "-1"], tmp_path)
    assert done.returncode == 2
    for field in ("concurrency:", "max_cost:", "timeout:"):
        assert field in done.stderr
    assert "Traceback" not in done.stderr


def test_the_published_line_schema_agrees_with_the_manifest_reader(tmp_path: Path) -> None:
    import jsonschema

    from kling_core.batches.manifest import FIELDS
    from kling_core.cli.info_cmd import schema_text

    schema = json.loads(schema_text("batch-line"))
    validator = jsonschema.Draft202012Validator(schema)
    assert set(schema["properties"]) == set(FIELDS) and set(schema["required"]) == {"video", "prompt"}
    good = {"video": "a.mp4", "prompt": "x @Image1", "images": ["i.png"], "keep_audio": True, "quality": "std",
            "elements": ["f.png:r.png", {"frontal_image": "f.png", "reference_images": ["r.png"]}],
            "options": {"seed": 3}, "provider": "fal,segmind", "output": "o/x.mp4", "client_key": "k-1"}
    bad = [{"prompt": "x"}, {"video": "a.mp4", "prompt": "x", "colour": 1}, {"video": "a.mp4", "prompt": "x", "keep_audio": "no"},
           {"video": "a.mp4", "prompt": "x", "images": "a.png"}]
    assert validator.is_valid(good)
    lines, problems = read_manifest(_write(tmp_path / "good.jsonl", [good]))
    assert problems == [] and len(lines) == 1
    for doc in bad:
        assert not validator.is_valid(doc)
        assert read_manifest(_write(tmp_path / "bad.jsonl", [doc]))[1], doc


def test_a_provider_bound_makes_lines_wait_for_a_slot(sample: SampleMedia, tmp_path: Path) -> None:  # noqa: F811
    manifest = _write(tmp_path / "m.jsonl", [{"video": str(sample.video), "prompt": p, "quality": "std",
                                              "options": {"fail": "content_policy"}} for p in ("a", "b", "c")])
    config = config_from_document({"default_provider": "mock", "media": {"work_dir": str(tmp_path / "cache")},
                                   "providers": {"mock": {"max_in_flight": 1, "options": {"latency": 0.3},
                                                          "poll": {"initial": 0.05, "max": 0.2}}}})

    class Seen(BatchEvents):
        def __init__(self) -> None:
            self.waits: list[tuple[int, str, int]] = []
            self.running = 0
            self.most = 0

        def waiting(self, line: Any, provider: str, limit: int) -> None:
            self.waits.append((line.number, provider, limit))

        def bound(self, line: Any, started: Any) -> None:
            self.running += 1
            self.most = max(self.most, self.running)

        def status(self, line: Any, status: Any) -> None:
            if status.state in ("failed", "succeeded", "cancelled"):
                self.running -= 1

    async def run() -> tuple[Seen, list[Any]]:
        seen = Seen()
        async with AsyncEditClient(config=config, journal=JobLog(tmp_path / "state")) as client:
            assert client.in_flight_limit("mock") == 1
            results = [r async for r in abatch(manifest, client=client, concurrency=3, events=seen)]
        return seen, results

    seen, results = asyncio.run(run())
    assert len(results) == 3 and seen.most == 1  # never two jobs in flight on the mock
    assert sorted(n for n, _p, _l in seen.waits) == [2, 3] and {(p, lim) for _n, p, lim in seen.waits} == {("mock", 1)}
