"""The exact commands that settle a job, for error messages and `kling jobs show`."""

from __future__ import annotations

from kling_core.job_commands import jobs_command, resume_command
from kling_core.joblog.records import JobRecord

__all__ = ["record_hints", "resume_command", "settle_commands", "uncertain_hint"]


def settle_commands(client_key: str, provider: str, *, can_reconcile: bool) -> list[str]:
    """What a user runs when a submit's outcome is unknown."""
    if can_reconcile:
        return [
            f"{resume_command(client_key)}  (asks {provider} for the job by its client key, then waits and saves)",
        ]
    return [
        f"{jobs_command('show', client_key)}  (what is known: times, any job id, the request)",
        f"{resume_command(client_key)} --job-id ID  (if you find the job on the {provider} dashboard)",
        f"{jobs_command('forget', client_key)} --force  (if you are sure no job was created: the same command then submits again)",
    ]


def uncertain_hint(client_key: str, provider: str, *, can_reconcile: bool) -> str:
    commands = settle_commands(client_key, provider, can_reconcile=can_reconcile)
    head = (f"job {client_key} is logged as uncertain and will not be submitted again until it is settled"
            if not can_reconcile else f"job {client_key} is logged as uncertain")
    return head + "; settle it with:\n" + "\n".join(f"  {c}" for c in commands)


def record_hints(record: JobRecord, *, can_reconcile: bool) -> list[str]:
    """Commands worth showing next to a job in `kling jobs show`."""
    key = record.client_key
    if record.state in ("uncertain", "submitting") and record.job_id is None:
        return settle_commands(key, record.provider, can_reconcile=can_reconcile)
    if record.state in ("submitted", "running", "succeeded"):
        return [f"{resume_command(key)}  (wait for it and save the video)"]
    if record.state == "saved":
        return [f"{resume_command(key)} -o OUT.mp4  (fetch the video again)"]
    return [f"{jobs_command('forget', key)}  (drop it from the log)"]
