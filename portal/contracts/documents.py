"""The stored files of contracts, each bound to the row that holds its key (portal.storage owners).

Every read names the owner and the SHA-256 the database recorded, so a storage key pointed at another
contract's file, an altered SHA-256 or a changed bit raises storage.TamperedFile and nothing is served
(portal.integrity turns that into the refusal page and an audit event).
"""

from __future__ import annotations

from portal.contracts.models import Contract, ContractDocument, DocumentRevision
from portal.storage import StoredObject, get_store


def revision_owner(contract_id: int, document_id: int, number: int) -> str:
    return f"contract/{contract_id}/document/{document_id}/revision/{number}"


def certificate_owner(contract_id: int) -> str:
    return f"contract/{contract_id}/certificate"


def page_image_owner(sha256: str, index: int, width: int) -> str:
    """Page images belong to the PDF's bytes (one image serves every revision with that SHA-256)."""
    return f"page-image/{sha256}/{index}/{width}"


def store_revision(document: ContractDocument, number: int, data: bytes) -> StoredObject:
    """Store the bytes of revision `number` of a flushed document."""
    return get_store().put(data, owner=revision_owner(document.contract_id, document.id, number))


def store_files(revisions: list[tuple[ContractDocument, int, bytes]],
                certificate: tuple[Contract, bytes] | None = None) -> list[StoredObject]:
    """store_revision() of each (document, number, bytes), then store_certificate() of `certificate`, written
    together (one wait for the disk): the stored objects in that order."""
    items = [(data, revision_owner(document.contract_id, document.id, number)) for document, number, data in revisions]
    if certificate is not None:
        items.append((certificate[1], certificate_owner(certificate[0].id)))
    return get_store().put_many(items)


def read_revision(revision: DocumentRevision) -> bytes:
    """Raises storage.StorageError if missing, storage.TamperedFile if not this revision's recorded bytes."""
    document = revision.document
    return read_stored_revision(revision.storage_key, contract_id=document.contract_id, document_id=document.id,
                                number=revision.number, sha256=revision.sha256)


def read_stored_revision(key: str, *, contract_id: int, document_id: int, number: int, sha256: str) -> bytes:
    """read_revision() from the columns of a query (search exports). Raises as read_revision()."""
    return get_store().get(key, owner=revision_owner(contract_id, document_id, number), sha256=sha256)


def store_certificate(contract: Contract, data: bytes) -> StoredObject:
    return get_store().put(data, owner=certificate_owner(contract.id))


def read_certificate(contract: Contract) -> bytes:
    """The 合意締結証明書. Raises storage.StorageError if missing, storage.TamperedFile if altered."""
    assert contract.certificate_key is not None
    return get_store().get(contract.certificate_key, owner=certificate_owner(contract.id),
                           sha256=contract.certificate_sha256)
