"""The end of a batch: its output and error files, written as the creator's files, then its
final status (``completed``, ``cancelled`` or ``expired``).

Output lines are in input-line order (OpenAI does not promise an order; matching is by
``custom_id``). Lines an expired batch never ran go to the error file with the code
``batch_expired``; lines a cancelled batch never ran are in neither file.
"""

from __future__ import annotations

from sluice.batches.lines import error_line
from sluice.batches.model import creator
from sluice.clock import Clock
from sluice.files.base import FileAccess
from sluice.storage.batches import BatchControl, StoredBatch
from sluice.tasks import run_to_end

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


async def write_files(
    store: BatchControl, files: FileAccess, batch: StoredBatch, owner: str, clock: Clock
) -> str | None:
    """Write the files of a batch ``owner`` holds in ``finalizing`` and end it; its final
    status (``None``: the lease was lost meanwhile, another process ends it)."""
    status = batch.ending or "completed"
    out: list[str] = []
    err: list[str] = []
    failed = 0
    for result in await run_to_end(store.results(batch.id)):
        if result.output is None:
            if status == "expired":
                err.append(
                    error_line(result.custom_id, code="batch_expired", message=EXPIRED_MESSAGE)
                )
                failed += 1
            continue
        if result.failed:
            err.append(result.output)
            failed += 1
        else:
            out.append(result.output)
    who = creator(batch)
    output_id = error_id = None
    if out:
        record = await run_to_end(
            files.create(
                who, purpose="batch_output", filename=f"{batch.id}_output.jsonl", data=_jsonl(out)
            )
        )
        output_id = record.id
    if err:
        record = await run_to_end(
            files.create(
                who, purpose="batch_output", filename=f"{batch.id}_error.jsonl", data=_jsonl(err)
            )
        )
        error_id = record.id
    ended = await run_to_end(
        store.end(
            batch.id,
            owner=owner,
            status=status,
            output_file_id=output_id,
            error_file_id=error_id,
            failed=failed,
            at=clock.now(),
        )
    )
    return status if ended else None


def _jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()
