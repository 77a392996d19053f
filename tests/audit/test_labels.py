"""Every action code reads as Japanese: a kind for the filter and a sentence for the rows."""

from __future__ import annotations

import re

import pytest

from portal.audit import labels
from portal.audit.actions import AuditAction

JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("action", list(AuditAction), ids=str)
def test_every_action_code_has_a_japanese_label(action: AuditAction) -> None:
    label = labels.LABELS.get(action)

    assert label is not None, f"{action} has no entry in portal/audit/labels.py LABELS"
    assert label.group in labels.GROUPS
    assert JAPANESE.search(label.kind)
    text = labels.sentence(str(action), actor="髙橋 一郎", target="契約 KEI-R8-0001")
    assert "{actor}" in label.sentence or "{object}" in label.sentence, "the sentence names neither who nor what"
    assert ("髙橋 一郎" in text) == ("{actor}" in label.sentence)
    assert ("契約 KEI-R8-0001" in text) == ("{object}" in label.sentence)
    assert JAPANESE.search(text)
    assert str(action) not in text


def test_an_unknown_code_still_reads_as_a_sentence_not_the_code() -> None:
    text = labels.sentence("future:thing:happened", actor="システム", target="")

    assert "future:thing:happened" not in text
    assert text.startswith("システム が")


def test_kinds_are_unique_so_the_filter_list_is_unambiguous() -> None:
    kinds = [label.kind for label in labels.LABELS.values()]
    assert len(kinds) == len(set(kinds))
