"""Host-specific scripted outcomes of the emulator, driven through the real client: Replicate's
``aborted`` prediction and Kling's 1303 refusal at the account's limit on tasks in flight.

Each is scripted as the other failures are (a ``[fail:NAME]`` prompt tag, the
``X-Kling-Emulator-Fail`` header or a host's ``fail`` setting), and only the host that has
it accepts the name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import FAST_POLL, host_client

from kling_core.client import AsyncEditClient
from kling_core.config import config_from_document
from kling_core.errors import JobFailedError
from kling_core.joblog import JobLog
from kling_core.joblog.costs import job_cost, total_line

pytestmark = pytest.mark.ffmpeg  # the client proves ffmpeg before any submit
VIDEO = "http://127.0.0.1:9/clip.mp4"  # never fetched: neither job here gets to render its input
O1_ROUTE = "/v1/models/kwaivgi/kling-o1/predictions"


@pytest.mark.kling_emulator(hosts=("replicate",), render="sample")
def test_an_aborted_prediction_is_a_failed_job_never_charged(kling_emulator: Any, tmp_path: Path) -> None:
    with host_client(kling_emulator, tmp_path, "replicate") as client:
        request = client.request(VIDEO, "Make it night [fail:aborted]", quality="std")
        with pytest.raises(JobFailedError) as info:
            client.edit(request, output=tmp_path / "out.mp4")
        (record,) = client.jobs()
    assert "aborted before it ran" in str(info.value) and "not charged" in str(info.value)
    assert record.state == "failed" and record.job_id is not None and not (tmp_path / "out.mp4").exists()
    assert job_cost(record).usd is None and total_line([record]) == "total: $0.00 over 0 finished jobs listed"
    base, key = kling_emulator.urls["replicate"], kling_emulator.keys["replicate"]
    with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=30) as api:
        doc = api.get(f"{base}/v1/predictions/{record.job_id}").json()
        # Only Replicate scripts `aborted`; asking another outcome's host-only name is refused by name.
        other = api.post(f"{base}{O1_ROUTE}", json={"input": {"prompt": "x [fail:in_flight_limit]",
                                                              "reference_video": VIDEO}})
    assert doc["status"] == "aborted" and doc["error"] is None and doc["output"] is None
    assert doc["started_at"] is None and doc["completed_at"] is not None and "metrics" not in doc
    assert other.status_code == 422 and "'in_flight_limit' is scripted by kling only" in other.json()["detail"]
    assert len([line for line in kling_emulator.lines if f'"POST /replicate{O1_ROUTE}" 201' in line]) == 1


@pytest.mark.kling_emulator(hosts=("kling",), render="sample")
def test_klings_1303_lowers_the_bound_and_the_refused_job_is_sent_again_once_ours_ends(
        kling_emulator: Any, tmp_path: Path) -> None:
    asyncio.run(_in_flight_limit(kling_emulator, tmp_path))


async def _in_flight_limit(emu: Any, tmp_path: Path) -> None:
    doc = {"media": {"allow_private_urls": True},
           "providers": {"kling": {"base_url": emu.urls["kling"], "poll": FAST_POLL}}}
    engine = emu.emulator.host_objects["kling"].engine
    async with AsyncEditClient(provider="kling", config=config_from_document(doc), environ=emu.environ(),
                               journal=JobLog(tmp_path / "state")) as client:
        # Our first task holds the pack's only slot: scripted to run until it is ended below.
        first = await client.submit(client.request(VIDEO, "Make it night [fail:timeout]", quality="std"))
        first_wait = asyncio.ensure_future(client.wait(first))
        second = asyncio.ensure_future(client.start(client.request(VIDEO, "Make it day [fail:in_flight_limit]",
                                                                   quality="std")))
        for _ in range(600):  # the refusal is what this waits for, not a time
            if any("code=1303" in line for line in emu.lines) or second.done():
                break
            await asyncio.sleep(0.05)
        assert not second.done(), second.result()  # refused, and waiting for our job to end
        limit = client._host_limit("kling")
        assert limit.bound == 1 and len(limit.jobs) == 1
        assert [j.id for j in engine.jobs.values()] == [first.job_id]  # the refusal made no task
        # The first task ends on the host (as a finished task frees its slot); our wait sees it end.
        task = engine._tasks[first.job_id]
        task.get_loop().call_soon_threadsafe(engine.cancel, engine.jobs[first.job_id])
        with pytest.raises(JobFailedError):
            await first_wait
        started = await asyncio.wait_for(second, 60)
    creates = [line for line in emu.lines if '"POST /kling/v1/videos/omni-video"' in line]
    assert len(creates) == 3 and '" 429 ' in creates[1] and "code=1303" in creates[1]
    assert '" 200 ' in creates[0] and '" 200 ' in creates[2]
    assert started.handle.job_id in engine.jobs and len(engine.jobs) == 2  # sent again once, made one task
    records = {r.client_key: r for r in JobLog(tmp_path / "state").list(limit=0)}
    assert records[started.client_key].job_id == started.handle.job_id
    assert records[started.client_key].state in ("submitted", "running")
