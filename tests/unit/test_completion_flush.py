"""Completions recorded but never published (a crash in between) are published by the next flush."""

from __future__ import annotations

from tests.fakes import Harness


def test_one_failing_republish_does_not_stop_the_others(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app()
    first = h.upload("a.jsonl", data=b"{bad\n")
    second = h.upload("b.jsonl", data=b"{bad\n")
    for job_id in (first, second):  # both recorded, neither announced (say, a crash before publishing)
        h.store.put(h.job(job_id).with_fields(completion_pending=True))
    h.clock.advance(60)
    h.publisher.fail_next(topic=h.settings.completions_topic)
    assert h.app.completions.flush_pending() == 1
    pending = [j for j in (first, second) if h.job(j).completion_pending]
    assert len(pending) == 1
    assert h.app.completions.flush_pending() == 1
    assert not any(h.job(j).completion_pending for j in (first, second))
