"""The loopback fal host used by the fault-injection and SIGKILL tests speaks fal's queue protocol
(the answers validate against the fal schemas the plugin is tested with), injects each fault as
scripted, and stays bounded in requests and time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from fault_host import APP, FAKE_KEY, Fault, FaultHost, Script, body_digest

from kling_core.contract.models import EditRequest
from kling_core.contract.status import JobStatus, Queued, Running, Succeeded
from kling_core.provider import ProviderContext
from kling_core.schema_store import load_schema
from kling_core.settings import MediaSettings, PollSettings, ProviderSettings

VIDEO = bytes(range(256)) * 64  # the host serves bytes; what they are does not matter here
AUTH = {"authorization": f"Key {FAKE_KEY}"}
SUBMIT = f"/{APP}/o1/video-to-video/edit"
BODY = {"prompt": "make it night", "video_url": "https://example.com/a.mp4", "keep_audio": False}


def _schema(name: str) -> dict[str, object]:
    return load_schema(f"providers/{name}")


def test_a_job_goes_submit_status_result_download(tmp_path: Path) -> None:
    with FaultHost(VIDEO, script=Script(queue_polls=1, progress_polls=1)) as host, \
            httpx.Client(base_url=host.base_url, headers=AUTH) as http:
        sub = http.post(SUBMIT, json=BODY)
        assert sub.status_code == 200
        jsonschema.validate(sub.json(), _schema("fal-queue-submit-response"))
        rid = sub.json()["request_id"]
        assert sub.json()["status_url"] == f"{host.base_url}/{APP}/requests/{rid}/status"
        states = []
        for _ in range(3):
            st = http.get(sub.json()["status_url"], params={"logs": "1"})
            jsonschema.validate(st.json(), _schema("fal-queue-status"))
            states.append((st.status_code, st.json()["status"]))
        assert states == [(202, "IN_QUEUE"), (202, "IN_PROGRESS"), (200, "COMPLETED")]
        res = http.get(sub.json()["response_url"])
        jsonschema.validate(res.json(), _schema("fal-edit-result"))
        video = res.json()["video"]
        assert video["file_size"] == len(VIDEO) and video["url"].startswith(host.base_url)
        got = httpx.get(video["url"])
        assert got.content == VIDEO and got.headers["content-length"] == str(len(VIDEO))
        assert http.put(sub.json()["cancel_url"]).json() == {"status": "CANCELLATION_REQUESTED"}
    assert host.created == {body_digest(sub.request.content): 1}
    assert [e.phase for e in host.log] == ["submit", "status", "status", "status", "result", "download", "cancel"]
    assert all(e.authorized for e in host.log if e.phase != "download")


def test_the_fal_plugin_runs_a_job_on_it(tmp_path: Path) -> None:
    from kling_core_plugins.fal import FalProvider

    with FaultHost(VIDEO) as host:
        ctx = ProviderContext(
            name="fal", environ={"FAL_KEY": FAKE_KEY}, media=MediaSettings(allow_private_urls=True),
            settings=ProviderSettings(base_url=host.base_url, timeout=2.0,
                                      poll=PollSettings(initial=0.01, max=0.02, jitter=0.0)),
        )

        async def go() -> list[JobStatus]:
            prov = FalProvider(ctx)
            handle = await prov.submit(EditRequest(prompt="make it night", video=host.input_url))
            seen = [await prov.status(handle) for _ in range(3)]
            await prov.aclose()
            return seen

        seen = asyncio.run(go())
    assert [type(s) for s in seen] == [Queued, Running, Succeeded]
    result = seen[-1]
    assert isinstance(result, Succeeded) and result.result.video.file_size == len(VIDEO)


@pytest.mark.parametrize(("fault", "expect"), [
    (Fault("submit", "error_500"), 500),
    (Fault("submit", "error_503"), 503),
    (Fault("submit", "answer_lost"), httpx.RemoteProtocolError),
])
def test_submit_faults(fault: Fault, expect: int | type[Exception]) -> None:
    with FaultHost(VIDEO, script=Script((fault,))) as host, httpx.Client(base_url=host.base_url, headers=AUTH) as http:
        if isinstance(expect, int):
            assert http.post(SUBMIT, json=BODY).status_code == expect
        else:
            with pytest.raises(expect):
                http.post(SUBMIT, json=BODY)
        ok = http.post(SUBMIT, json=BODY)  # the script is spent: the next submit is answered
        assert ok.status_code == 200
    created = sum(host.created.values())
    assert created == (2 if fault.kind == "answer_lost" else 1)
    assert host.duplicates() == ({body_digest(ok.request.content): 2} if fault.kind == "answer_lost" else {})
    assert [j.delivered for j in host.jobs.values()] == ([False, True] if created == 2 else [True])


def test_submit_timeout_outlasts_the_client_and_creates_the_job() -> None:
    with FaultHost(VIDEO, script=Script((Fault("submit", "timeout"),)), client_timeout=0.3) as host, \
            httpx.Client(base_url=host.base_url, headers=AUTH, timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
        http.post(SUBMIT, json=BODY)
    assert sum(host.created.values()) == 1 and not next(iter(host.jobs.values())).delivered


def test_status_and_result_faults_then_normal_answers() -> None:
    script = Script((Fault("status", "rate_limited", 2), Fault("status", "error_503", 0), Fault("status", "dropped"),
                     Fault("result", "error_500"), Fault("result", "dropped")), queue_polls=0, progress_polls=0)
    with FaultHost(VIDEO, script=script) as host, httpx.Client(base_url=host.base_url, headers=AUTH) as http:
        doc = http.post(SUBMIT, json=BODY).json()
        r1 = http.get(doc["status_url"])
        assert (r1.status_code, r1.headers["retry-after"]) == (429, "2")
        assert http.get(doc["status_url"]).status_code == 503
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(doc["status_url"])
        assert http.get(doc["status_url"]).json()["status"] == "COMPLETED"
        assert http.get(doc["response_url"]).status_code == 500
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(doc["response_url"])
        assert http.get(doc["response_url"]).status_code == 200
        assert host.faults_left() == []


def test_download_faults() -> None:
    script = Script((Fault("download", "truncated"), Fault("download", "close_truncated"),
                     Fault("download", "not_video"), Fault("download", "error_503")), report_size=False,
                    content_length=False)
    with FaultHost(VIDEO, script=script) as host, httpx.Client(base_url=host.base_url, headers=AUTH) as http:
        doc = http.post(SUBMIT, json=BODY).json()
        video = http.get(doc["response_url"]).json()["video"]
        assert "file_size" not in video
        with pytest.raises(httpx.RemoteProtocolError):  # shorter than its Content-Length
            httpx.get(video["url"])
        short = httpx.get(video["url"])  # close-delimited: looks complete, is half
        assert "content-length" not in short.headers and short.content == VIDEO[: len(VIDEO) // 2]
        junk = httpx.get(video["url"])
        assert len(junk.content) == len(VIDEO) and junk.content != VIDEO
        assert httpx.get(video["url"]).status_code == 503
        whole = httpx.get(video["url"])
        assert "content-length" not in whole.headers and whole.content == VIDEO


def test_result_url_override_and_unknown_requests() -> None:
    with FaultHost(VIDEO, script=Script(result_url="file:///etc/passwd")) as host, \
            httpx.Client(base_url=host.base_url, headers=AUTH) as http:
        doc = http.post(SUBMIT, json=BODY).json()
        assert http.get(doc["response_url"]).json()["video"]["url"] == "file:///etc/passwd"
        assert http.get(f"/{APP}/requests/nope/status").status_code == 404
        assert httpx.post(f"{host.base_url}{SUBMIT}", json=BODY).status_code == 401  # no key


def test_bounded_in_requests_and_time() -> None:
    with FaultHost(VIDEO, max_requests=3, lifetime=0.5) as host, httpx.Client(base_url=host.base_url) as http:
        codes = [http.get("/media/input.mp4").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 503, 503] and host.capped == 2
        assert host.wait_for(lambda: host.expired, 3)
        time.sleep(0.1)
        with pytest.raises(httpx.TransportError):
            httpx.get(host.input_url, timeout=1)


def test_stalls_until_released() -> None:
    with FaultHost(VIDEO, script=Script((Fault("submit", "hold"),))) as host:
        def post() -> None:
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.post(f"{host.base_url}{SUBMIT}", json=BODY, headers=AUTH, timeout=5)

        import threading

        t = threading.Thread(target=post)
        t.start()
        assert host.wait_for(lambda: sum(host.created.values()) == 1, 3)
        time.sleep(0.2)
        assert t.is_alive()  # held
        host.release()
        t.join(3)
        assert not t.is_alive()
