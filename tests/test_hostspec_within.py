"""StatusShape.within / ResultShape.within: a document read inside an envelope field."""

from __future__ import annotations

from kling_core.sdk import ResultShape, StatusShape


def test_every_status_path_gains_the_prefix() -> None:
    shape = StatusShape(state="s", position="p", progress="g", logs="l", error_message=("e1", "e2"),
                        error_code=("c",), completed_error=("x",), states={"done": "completed"})
    inner = shape.within("data")
    assert (inner.state, inner.position, inner.progress, inner.logs) == ("data.s", "data.p", "data.g", "data.l")
    assert inner.error_message == ("data.e1", "data.e2") and inner.error_code == ("data.c",)
    assert inner.completed_error == ("data.x",) and inner.states == shape.states
    assert StatusShape().within("data").position is None  # an unset path stays unset


def test_every_result_path_gains_the_prefix_but_not_the_header() -> None:
    shape = ResultShape(url=("a.url", "b"), file_size="size", content_type="type", file_name="name", credits="cr",
                        remaining_credits_header="x-remaining-credits", duration="d", created_at_ms="c",
                        completed_at_ms="f")
    inner = shape.within("data")
    assert inner.url == ("data.a.url", "data.b")
    assert (inner.file_size, inner.content_type, inner.file_name, inner.credits, inner.duration) == (
        "data.size", "data.type", "data.name", "data.cr", "data.d")
    assert (inner.created_at_ms, inner.completed_at_ms) == ("data.c", "data.f")
    assert inner.remaining_credits_header == "x-remaining-credits"
