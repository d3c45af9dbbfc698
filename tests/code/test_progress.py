"""Code layer: long loops report how far they are without flooding the log."""

import logging

from components.progress import Progress, duration_text


def test_progress_logs_at_most_once_an_interval_and_always_at_the_end(caplog):
    caplog.set_level(logging.INFO, logger="components.progress")
    progress = Progress("training", 50, done=10, unit="step", interval_s=3600)
    for _ in range(40):
        progress.advance(tokens=100, loss=2.5)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1  # the interval never passed, so only the last step logged
    assert lines[0].startswith("training: step 50/50, loss 2.5, ") and lines[0].endswith("tokens/s, done")


def test_each_line_says_what_is_left(caplog):
    caplog.set_level(logging.INFO, logger="components.progress")
    progress = Progress("generating answers", 8, unit="question", interval_s=0)
    progress.advance(4)
    assert caplog.records[-1].getMessage().startswith("generating answers: question 4/8, about ")
    assert caplog.records[-1].getMessage().endswith(" left")
    assert duration_text(125) == "2 min 5 s" and duration_text(40) == "40 s"
