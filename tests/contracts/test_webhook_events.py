"""Each transition writes its webhook event in the same transaction as the change (contract.sent, .signed per
party, .completed, .cancelled), with no token or link in the body."""

from __future__ import annotations

import json

from sqlalchemy import select

from portal import clock
from portal.webhooks import service as webhooks
from portal.webhooks.models import WebhookEvent, WebhookEventType
from tests.conftest import post_form, reread
from tests.pdfs import make_pdf


def _events(session) -> list[tuple[str, dict]]:
    rows = reread(session).scalars(select(WebhookEvent).order_by(WebhookEvent.id))
    return [(row.type.value, row.payload) for row in rows]


def test_sending_signing_completing_and_cancelling_write_their_events(app, session, world):
    with app.app_context():
        webhooks.create_endpoint(session, url="http://127.0.0.1:9/hook", events=[e.value for e in WebhookEventType],
                                 description="文書管理", actor=None, now=clock.now())
        session.commit()
    completed = world.completed_contract(make_pdf("A"))
    kinds = [kind for kind, _ in _events(session)]
    assert kinds[0] == "contract.sent"
    assert kinds.count("contract.signed") == len(world.party_ids(completed))
    assert kinds[-1] == "contract.completed"
    for _, body in _events(session):
        text = json.dumps(body, ensure_ascii=False)
        assert "/s/" not in text
        assert "/d/" not in text

    cancelled = world.sent_contract(make_pdf("B"))
    page = f"/contracts/{cancelled}"
    assert post_form(world.staff_client, f"{page}/cancel", {"reason": "入札のやり直し"}, page=page).status_code == 303
    assert _events(session)[-1][0] == "contract.cancelled"
