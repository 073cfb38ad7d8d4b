"""The hand-written JSON Schemas and the attrs/cattrs models agree, in both directions.

1. Model instances unstructure to documents the schema accepts.
2. Documents are generated from valid ones by one random mutation (wrong type, out of range,
   too long, unknown key, missing key, null, ...). For each: the schema accepts it exactly
   when the models structure it, and when both reject it they name the same field.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_core.config import config_from_document, config_to_document
from kling_core.contract.models import Cost, EditRequest, EditResult, Element, OutputVideo, Timings
from kling_core.contract.status import Cancelled, Failed, JobError, JobStatus, Queued, Running, Succeeded
from kling_core.errors import ValidationError
from kling_core.schema_store import validator
from kling_core.serialization import structure, unstructure

# --- valid instances -----------------------------------------------------------------------

safe_text = st.text(alphabet=string.ascii_letters + string.digits + " .,-", min_size=1, max_size=40)
urls = st.builds(lambda h, p: f"https://{h}.example/{p}", st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                 st.from_regex(r"[a-z0-9_/]{0,12}\.(mp4|png|jpg)", fullmatch=True))
paths = st.from_regex(r"(/?[a-z0-9_]{1,8}/){0,2}[a-z0-9_]{1,8}\.(mp4|mov|png)", fullmatch=True)
media = st.one_of(urls, paths, paths.map(lambda p: "file:///" + p.lstrip("/")))
opt_text = st.none() | safe_text

elements = st.builds(
    Element,
    frontal_image=media,
    reference_images=st.lists(media, min_size=1, max_size=3).map(tuple),
    name=opt_text,
    description=opt_text,
)
requests = st.builds(
    EditRequest,
    prompt=safe_text.filter(str.strip),  # a blank prompt is refused
    video=media,
    model=st.sampled_from(["kling-o1", "kling-o3"]),
    images=st.lists(media, max_size=4).map(tuple),
    elements=st.lists(elements, max_size=3).map(tuple),
    keep_audio=st.booleans(),
    quality=st.sampled_from(["std", "pro"]),
    edit_mode=st.sampled_from(["edit", "reference"]),
    aspect_ratio=st.none() | st.sampled_from(["16:9", "9:16", "1:1"]),
    duration=st.none() | st.integers(3, 15),
    webhook_url=st.none() | urls,
    client_key=st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True),
    options=st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                            st.one_of(safe_text, st.integers(-5, 5), st.booleans(), st.floats(0, 10)), max_size=3),
)
numbers = st.none() | st.floats(0, 2e9, allow_nan=False)
results = st.builds(
    EditResult,
    video=st.builds(OutputVideo, url=urls, content_type=st.none() | st.just("video/mp4"),
                    file_name=opt_text, file_size=st.none() | st.integers(0, 10**10), path=st.none() | paths),
    job_id=safe_text,
    provider=st.sampled_from(["mock", "fal", "segmind"]),
    model=st.sampled_from(["kling-o1", "kling-o3"]),
    timings=st.builds(Timings, submitted_at=numbers, started_at=numbers, completed_at=numbers),
    cost=st.none() | st.builds(Cost, credits=numbers, amount=numbers, currency=st.none() | st.just("USD"),
                               remaining_credits=numbers),
    report=st.none() | st.dictionaries(st.sampled_from(["grade", "tiles"]), safe_text, max_size=2),
)
ids = safe_text
statuses: st.SearchStrategy[Any] = st.one_of(
    st.builds(Queued, job_id=ids, provider=ids, position=st.none() | st.integers(0, 50)),
    st.builds(Running, job_id=ids, provider=ids, progress=st.none() | st.floats(0, 100),
              logs=st.lists(safe_text, max_size=3).map(tuple)),
    st.builds(Succeeded, job_id=ids, provider=ids, result=results),
    st.builds(Failed, job_id=ids, provider=ids,
              error=st.builds(JobError, message=safe_text, code=opt_text, retryable=st.booleans(),
                              kind=st.sampled_from(["job_failed", "content_policy", "validation"]))),
    st.builds(Cancelled, job_id=ids, provider=ids),
)
env_refs = st.from_regex(r"env:[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)
poll_docs = st.fixed_dictionaries({}, optional={
    "initial": st.floats(0, 5), "factor": st.floats(1, 3), "max": st.floats(0, 30), "jitter": st.floats(0, 0.9),
    "deadline": st.floats(1, 3600), "status_retries": st.integers(0, 9), "max_retry_after": st.floats(0, 300),
    "typical_seconds": st.lists(st.floats(0, 600), min_size=2, max_size=2),
    "typical_by_model": st.dictionaries(st.sampled_from(["kling-o1", "kling-o3"]),
                                        st.lists(st.floats(0, 600), min_size=2, max_size=2), max_size=2),
    "window_every": st.floats(0.1, 10), "outlier_fraction": st.floats(0, 0.5), "push_every": st.floats(1, 600),
    "stream": st.booleans(),
})
defaults_docs = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["kling-o1", "kling-o3"]), "quality": st.sampled_from(["std", "pro"]),
    "keep_audio": st.booleans(), "edit_mode": st.sampled_from(["edit", "reference"]),
})
provider_docs = st.fixed_dictionaries({}, optional={
    "uses": st.sampled_from(["fal", "kling", "team-2"]), "key": env_refs, "base_url": urls, "timeout": st.floats(0.5, 120), "poll": poll_docs,
    "defaults": defaults_docs, "options": st.dictionaries(st.sampled_from(["fail", "latency"]), safe_text, max_size=2),
})
config_docs = st.fixed_dictionaries({}, optional={
    "default_provider": st.sampled_from(["mock", "fal"]),
    "defaults": defaults_docs,
    "media": st.fixed_dictionaries({}, optional={
        "ffmpeg": paths, "allow_private_urls": st.booleans(), "max_download_bytes": st.integers(1, 10**10),
        "download_timeout": st.floats(0.1, 100), "ffmpeg_timeout": st.floats(0.1, 100), "work_dir": paths}),
    "providers": st.dictionaries(st.sampled_from(["mock", "fal", "kling"]), provider_docs, max_size=2),
})

# --- mutations -----------------------------------------------------------------------------

BAD_VALUES: list[Any] = [None, 7, -1, 3.5, True, "", " lead", "x" * 2600, [], ["x"] * 9, {}, {"zz": 1},
                         "ftp://host/file", "https://", 0, 10**12, 101.0, "env:", "sk-secret"]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    doc = copy.deepcopy(draw(base))
    target = draw(st.sampled_from(_paths(doc)))
    kind = draw(st.sampled_from(["replace", "extra", "drop"]))
    parent: Any = doc
    for key in target[:-1]:
        parent = parent[key]
    if not target:  # the root: only add an unknown key
        doc["unknown_field"] = 1
        return doc
    last = target[-1]
    node = parent[last]
    if kind == "extra" and isinstance(node, dict):
        node["unknown_field"] = draw(st.sampled_from(BAD_VALUES[:5]))
    elif kind == "drop" and isinstance(parent, dict):
        del parent[last]
    else:
        parent[last] = draw(st.sampled_from(BAD_VALUES))
    return doc


# --- comparing the two verdicts ------------------------------------------------------------


def _fmt(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_paths(schema_name: str, doc: Any) -> set[str]:
    paths: set[str] = set()
    for err in validator(schema_name).iter_errors(doc):
        stack = [err]
        while stack:
            e = stack.pop()
            if e.context:
                stack += e.context
                continue
            base = list(e.absolute_path)
            if e.validator == "additionalProperties" and isinstance(e.instance, dict):
                allowed = set(e.schema.get("properties", {}))
                paths |= {_fmt([*base, k]) for k in e.instance if k not in allowed}
            elif e.validator == "required" and isinstance(e.instance, dict):
                paths |= {_fmt([*base, k]) for k in e.validator_value if k not in e.instance}
            else:
                paths.add(_fmt(base))
    return paths


def model_paths(make: Callable[[Any], Any], doc: Any) -> set[str]:
    try:
        make(doc)
    except ValidationError as exc:
        return {p.path for p in exc.problems}
    return set()


def related(a: str, b: str) -> bool:
    """Same field, or one names a field inside the other (e.g. credentials vs credentials.key)."""
    return a == b or a.startswith(b + ".") or a.startswith(b + "[") or b.startswith(a + ".") or b.startswith(a + "[")


def agree(schema_name: str, make: Callable[[Any], Any], doc: Any) -> None:
    s_paths = schema_paths(schema_name, doc)
    m_paths = model_paths(make, doc)
    assert bool(s_paths) == bool(m_paths), f"schema says {sorted(s_paths)}, models say {sorted(m_paths)} for {doc!r}"
    if s_paths:
        assert any(related(m, s) for m in m_paths for s in s_paths), (
            f"schema names {sorted(s_paths)}, models name {sorted(m_paths)} for {doc!r}"
        )


CASES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Any]]] = {
    "edit-request": (requests.map(unstructure), lambda d: structure(d, EditRequest)),
    "edit-result": (results.map(unstructure), lambda d: structure(d, EditResult)),
    "job-status": (statuses.map(unstructure), lambda d: structure(d, JobStatus)),
    "config": (config_docs, config_from_document),
}


@pytest.mark.parametrize("name", list(CASES))
@given(data=st.data())
def test_valid_instances_satisfy_the_schema(name: str, data: st.DataObject) -> None:
    strategy, make = CASES[name]
    doc = data.draw(strategy)
    errors = sorted(str(e.message) for e in validator(name).iter_errors(doc))
    assert errors == [], f"{name}: {errors} for {doc!r}"
    # ... and structure back to an equal model (round trip).
    dump = config_to_document if name == "config" else unstructure
    assert dump(make(doc)) == dump(make(dump(make(doc))))


@pytest.mark.parametrize("name", list(CASES))
@given(data=st.data())
def test_schema_and_models_agree_on_mutated_documents(name: str, data: st.DataObject) -> None:
    strategy, make = CASES[name]
    agree(name, make, data.draw(mutated(strategy)))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"prompt": "x", "video": "a.mp4", "elements": [
            {"frontal_image": "f.png", "reference_images": ["r.png"]},
            {"frontal_image": "f.png", "reference_images": ["1.png", "2.png", "3.png", "4.png"]}]},
         "elements[1].reference_images: 4 given, at most 3"),
        ({"video": "a.mp4"}, "prompt: required field missing"),
        ({"prompt": "x", "video": "a.mp4", "quality": "hd"}, "quality: 'hd' is not one of std, pro"),
        ({"prompt": "x", "video": 5}, "video: expected a string, got an integer"),
        ({"prompt": "x", "video": "ftp://h/a.mp4"}, "video: scheme 'ftp' is not supported"),
        ({"prompt": "x", "video": "a.mp4", "bogus": 1}, "bogus: unknown field"),
        ({"prompt": "x" * 2501, "video": "a.mp4"}, "prompt: 2501 characters, at most 2500"),
        ({"prompt": " \t\n ", "video": "a.mp4"}, "prompt: must not be blank: it holds only whitespace"),
    ],
)
def test_messages_name_the_field_and_reason(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        structure(doc, EditRequest)
    assert message in str(info.value)
    assert "@ $" not in str(info.value) and "invalid value" not in str(info.value)


def test_a_blank_prompt_is_refused_by_the_schema_and_the_models_alike() -> None:
    doc = {"prompt": "   ", "video": "a.mp4"}
    assert schema_paths("edit-request", doc) == {"prompt"} == model_paths(lambda d: structure(d, EditRequest), doc)
    assert schema_paths("batch-line", doc) == {"prompt"}
    with pytest.raises(ValueError, match=r"^'prompt' must not be blank"):
        EditRequest(prompt="  ", video="a.mp4")


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        structure({"prompt": "", "video": 1, "quality": "x", "extra": True}, EditRequest)
    assert {p.path for p in info.value.problems} == {"prompt", "video", "quality", "extra"}


def test_schemas_are_valid_draft_2020_12() -> None:
    for name in ("edit-request", "edit-result", "job-status", "config"):
        validator(name)  # check_schema raises on an invalid schema
