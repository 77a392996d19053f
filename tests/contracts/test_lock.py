"""lifecycle.lock(): what the caller reads after it is what was committed before it, also what its session
had already loaded (the contract, its signers, its documents and their revisions, who made it)."""

from __future__ import annotations

from portal import clock
from portal.auth.models import StaffUser
from portal.contracts import lifecycle
from portal.contracts.models import Contract, DocumentRevision, Party, RevisionKind
from tests.pdfs import make_pdf


def test_lock_reads_again_what_the_session_had_loaded(app, world):
    contract_id = world.sent_contract(make_pdf("Agreement"))
    factory = app.extensions["portal.session_factory"]
    with factory() as mine, factory() as theirs:
        contract = mine.get(Contract, contract_id)
        party_id = contract.parties[0].id
        loaded = (contract.business_name, contract.parties[0].email, contract.documents[0].current.number,
                  contract.created_by.name)

        other = theirs.get(Contract, contract_id)
        other.business_name = "庁舎清掃業務委託（変更後）"
        other.parties[0].email = "sato@keiyaku-shoji.co.jp"
        current = other.documents[0].current
        other.documents[0].revisions.append(DocumentRevision(
            number=current.number + 1, kind=RevisionKind.SIGNED, storage_key=current.storage_key,
            sha256=current.sha256, size=current.size, created_at=clock.now()))
        theirs.get(StaffUser, other.created_by_id).name = "別の 職員"
        theirs.commit()

        locked = lifecycle.lock(mine, contract_id)
        assert locked is contract
        seen = (locked.business_name, locked.parties[0].email, locked.documents[0].current.number,
                locked.created_by.name)
        assert seen == ("庁舎清掃業務委託（変更後）", "sato@keiyaku-shoji.co.jp", loaded[2] + 1, "別の 職員")
        assert seen != loaded
        mine.rollback()

        assert mine.get(Party, party_id).email == "sato@keiyaku-shoji.co.jp"  # loaded in `mine` again
        theirs.get(Party, party_id).email = "suzuki@keiyaku-shoji.co.jp"
        theirs.commit()
        party = lifecycle.lock_for_party(mine, party_id)
        assert party is not None
        assert party.email == "suzuki@keiyaku-shoji.co.jp"
        assert party.contract.business_name == "庁舎清掃業務委託（変更後）"
        mine.rollback()
