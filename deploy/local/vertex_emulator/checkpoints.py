"""Which epochs of a tuning job get a checkpoint, and the ids the emulator gives what it derives.

The rule, from "Use checkpoints in supervised fine-tuning for Gemini models"
(https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/checkpoints.md.txt, read
2026-11-30): "For tuning jobs with less than 10 epochs, one checkpoint is saved approximately after each
epoch. For tuning jobs with more than 10 epochs, around 10 checkpoints are saved at even distribution, with
the exception of the final checkpoint, which is saved immediately after all epochs are trained." The tuned
model's endpoint is the default checkpoint's; the emulator's default checkpoint is the last one.

Checkpoint ids are "1", "2", ... in order, with their epoch and step, as the supervised-tuning page's sample
output shows (``checkpoint_id='1' epoch=1 step=10``; https://docs.cloud.google.com/gemini-enterprise-agent-
platform/models/tuning/supervised-tuning/use, read 2026-11-30).

``export_last_checkpoint_only`` "disable[s] intermediate checkpoints ... and only the last checkpoint will be
exported" (SupervisedTuningSpec in aiplatform_v1 2.7): the emulator then lists that one checkpoint. The
TunedModel reference says ``checkpoints`` "is only populated for tuning jobs that enable intermediate
checkpoints", which could also mean an empty list: the first run against the real service settles it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Final

MAX_CHECKPOINTS: Final = 10
# The emulator's epoch count when a request leaves it unset (the real service picks one per dataset size).
DEFAULT_EPOCHS: Final = 3
EXAMPLES_PER_STEP: Final = 16


@dataclasses.dataclass(frozen=True)
class CheckpointPlan:
    checkpoint_id: str
    epoch: int
    step: int
    share: float  # how far through the RUNNING time this checkpoint is saved (1.0: at the end)


def checkpoint_epochs(epochs: int, last_only: bool) -> list[int]:
    """The epochs that end in a saved checkpoint: each one up to 10 epochs, else 10 spread evenly to the last."""
    if last_only:
        return [epochs]
    if epochs <= MAX_CHECKPOINTS:
        return list(range(1, epochs + 1))
    return [math.ceil(i * epochs / MAX_CHECKPOINTS) for i in range(1, MAX_CHECKPOINTS + 1)]


def plan_checkpoints(epochs: int, total_steps: int, last_only: bool) -> list[CheckpointPlan]:
    """The checkpoints of a job of ``epochs`` epochs and ``total_steps`` steps, ids "1", "2", ... in order."""
    return [
        CheckpointPlan(
            checkpoint_id=str(number),
            epoch=epoch,
            step=math.ceil(total_steps * epoch / epochs),
            share=epoch / epochs,
        )
        for number, epoch in enumerate(checkpoint_epochs(epochs, last_only), start=1)
    ]


def derived_id(*parts: str) -> str:
    """A stable 19-digit id for something derived from a job (a checkpoint's endpoint, an evaluation run).

    Hashed rather than drawn from the seeded generator, so adding checkpoints does not shift later job ids.
    """
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return str(10**18 + int.from_bytes(digest[:8], "big") % (2**63 - 10**18))
