"""The ``kling jobs resume KEY`` hint is spelled once (kling_core.job_commands) for the HTTP
layer's download errors and the job log's hints, and a user's client key with a space or a
quote yields a command that pastes back to the same key."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from kling_core.http.download import refetch_command
from kling_core.joblog.hints import record_hints, resume_command, settle_commands
from kling_core.joblog.records import JobRecord

AWKWARD = ["my key", "it's", 'a "b"; rm -rf ~', "plain-key"]


@pytest.mark.parametrize("key", AWKWARD)
def test_both_places_spell_the_same_pasteable_resume_command(key: str) -> None:
    expected = f"kling jobs resume {shlex.quote(key)}"
    assert refetch_command("fal", "job-1", key) == expected
    assert resume_command(key) == expected
    assert shlex.split(expected) == ["kling", "jobs", "resume", key]


def test_a_key_with_a_space_is_quoted_in_every_settle_command() -> None:
    for can_reconcile in (True, False):
        for line in settle_commands("my key", "fal", can_reconcile=can_reconcile):
            command = line.split("  (", 1)[0]
            assert "'my key'" in command and shlex.split(command)[3] == "my key"
    record = JobRecord(client_key="my key", provider="fal", model="kling-o1", request={}, request_sha256="x",
                       state="failed", created_at=1.0, updated_at=1.0)
    assert record_hints(record, can_reconcile=False) == ["kling jobs forget 'my key'  (drop it from the log)"]


def test_the_http_layer_does_not_load_the_job_log() -> None:
    code = ("import sys, kling_core.http.download; "
            "bad = [m for m in sys.modules if m == 'sqlite3' or m.startswith('kling_core.joblog')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
