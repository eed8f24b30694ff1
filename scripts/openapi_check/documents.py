"""Patient 1's documents: storeDocument (every metadata header, the size limit, chunked and cut
short uploads, each refusal), listDocuments, getDocument and getDocumentContent."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
from dataclasses import dataclass

from .common import (
    CONTENT, CONTENT_GET, DOC, DOC_GET, DOCS, DOCS_GET, DOCS_POST, INS1, INS2, INS3, INS_BAD_KEY, MAX_DOCUMENT_BYTES,
    UNKNOWN_ID, Daemon, Ed25519PrivateKey, auth, json_is_ascii,
)


@dataclass(frozen=True)
class StoredDocument:
    """Patient 1's document stored with every metadata header: what the reads compare with."""
    id: str
    content: bytes
    metadata: dict


def exercise_documents(d: Daemon, client_doc: str):
    """Patient 1's documents, after the client stored one (`client_doc`)."""
    stored = store_documents(d)
    store_refusals(d)
    list_documents(d, stored.id)
    get_document(d, stored.id, client_doc)
    get_document_content(d, stored)


def store_documents(d: Daemon) -> StoredDocument:
    """Four documents stored: every metadata header, the least (class only, empty), chunked
    without Content-Length, and exactly the size limit."""
    checker, send = d.checker, d.send
    p1 = d.issuer.auth(INS1)
    content = "Hémoglobine 14 g/dL\n".encode("utf-8") * 10
    metadata = {
        "Coffre-Class": "BIOLOGIE",
        "Coffre-Title": urllib.parse.quote("Bilan sanguin été", safe=""),
        "Coffre-Type-Code": "11502-2",
        "Coffre-Care-Date": "2024-02-29",
        "Content-Type": "text/plain; charset=utf-8",
    }
    stored = checker.case(
        "storeDocument with every metadata header -> 201", DOCS_POST,
        send("POST", DOCS % INS1, headers={**p1, **metadata}, body=content), 201,
        extra=json_is_ascii(lambda b: b["class"] == "BIOLOGIE" and b["classCode"] == "10" and b["title"] == "Bilan sanguin été"
                            and b["typeCode"] == "11502-2" and b["careDate"] == "2024-02-29" and b["size"] == len(content)
                            and b["sha256"] == hashlib.sha256(content).hexdigest() and b["status"] == "current"
                            and b["hiddenFromRepresentatives"] is False and b["hiddenFromPatient"] is False
                            and b["masked"] is False and "releasedAt" not in b
                            and b["author"] == {"role": "patient", "id": INS1} and b["mediaType"] == metadata["Content-Type"]))
    doc_id = stored.json().get("id", UNKNOWN_ID) if stored is not None and stored.status == 201 else UNKNOWN_ID
    checker.case("storeDocument minimal (class only, no Content-Type, empty body) -> 201", DOCS_POST,
                 send("POST", DOCS % INS1, headers={**p1, "Coffre-Class": "AUTR_DOC"}, body=b""), 201,
                 extra=json_is_ascii(lambda b: b["size"] == 0 and b["mediaType"] == "application/octet-stream"
                                     and b["classCode"] == "90"
                                     and not {"title", "typeCode", "careDate", "replaces", "releasedAt"} & set(b)))
    checker.case("storeDocument chunked, no Content-Length -> 201", DOCS_POST,
                 send("POST", DOCS % INS1, headers={**p1, "Coffre-Class": "RADIO_SC", "Content-Type": "application/pdf"},
                      body=os.urandom(50_000), chunked=True), 201,
                 extra=json_is_ascii(lambda b: b["size"] == 50_000 and b["classCode"] == "31"))
    checker.case("storeDocument of exactly the size limit -> 201", DOCS_POST,
                 send("POST", DOCS % INS1, headers={**p1, "Coffre-Class": "SYNTHESE"}, body=os.urandom(MAX_DOCUMENT_BYTES)),
                 201, extra=json_is_ascii(lambda b: b["size"] == MAX_DOCUMENT_BYTES))
    return StoredDocument(doc_id, content, metadata)


def store_refusals(d: Daemon):
    """storeDocument's refusals: metadata headers, the size limit (declared and chunked), an
    upload cut short, the dossier, the caller, the INS; none stores anything (listDocuments
    counts them)."""
    checker, send = d.checker, d.send
    p1, p3 = d.issuer.auth(INS1), d.issuer.auth(INS3)
    bad_metadata = [
        ("without Coffre-Class -> 400 unknown_class", {}, "unknown_class"),
        ("unknown Coffre-Class -> 400 unknown_class", {"Coffre-Class": "NOPE"}, "unknown_class"),
        ("lower-case Coffre-Class -> 400 unknown_class", {"Coffre-Class": "biologie"}, "unknown_class"),
        ("impossible Coffre-Care-Date -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Care-Date": "2023-02-29"}, "invalid_metadata"),
        ("Coffre-Hidden-From from the patient -> 400 invalid_metadata (a professional's call)",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": "representatives"}, "invalid_metadata"),
        ("empty Coffre-Hidden-From from the patient -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": ""}, "invalid_metadata"),
        ("Coffre-Type-Code with a space -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Type-Code": "11502 2"}, "invalid_metadata"),
        ("badly percent-encoded Coffre-Title -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "%ZZ"}, "invalid_metadata"),
        ("Coffre-Title over 512 bytes -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "%C3%A9" * 257}, "invalid_metadata"),
        ("Content-Type without a slash -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Content-Type": "pdf"}, "invalid_metadata"),
    ]
    for label, headers, code in bad_metadata:
        checker.case("storeDocument " + label, DOCS_POST,
                     send("POST", DOCS % INS1, headers={**p1, **headers}, body=b"x"), 400, code)
    checker.case("storeDocument over the size limit (Content-Length) -> 413 payload_too_large", DOCS_POST,
                 send("POST", DOCS % INS1, headers={**p1, "Coffre-Class": "BIOLOGIE"},
                      body=os.urandom(MAX_DOCUMENT_BYTES + 50_000)), 413, "payload_too_large")
    checker.case("storeDocument over the size limit (chunked) -> 413 payload_too_large", DOCS_POST,
                 send("POST", DOCS % INS1, headers={**p1, "Coffre-Class": "BIOLOGIE"},
                      body=os.urandom(MAX_DOCUMENT_BYTES + 50_000), chunked=True), 413, "payload_too_large")
    checker.case("storeDocument cut short of Content-Length -> 400 upload_incomplete", DOCS_POST,
                 send("POST", DOCS % INS1, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=b"0123456789",
                      content_length=100, half_close=True), 400, "upload_incomplete")
    checker.case("storeDocument without a dossier -> 404 dossier_not_found", DOCS_POST,
                 send("POST", DOCS % INS3, headers={**p3, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 404, "dossier_not_found")
    checker.case("storeDocument in another patient's dossier -> 403 access_denied", DOCS_POST,
                 send("POST", DOCS % INS2, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 403, "access_denied")
    checker.case("storeDocument without assertion -> 401 assertion_missing", DOCS_POST,
                 send("POST", DOCS % INS1, headers={"Coffre-Class": "BIOLOGIE"}, body=b"x"), 401, "assertion_missing")
    checker.case("storeDocument invalid INS -> 400 invalid_ins", DOCS_POST,
                 send("POST", DOCS % INS_BAD_KEY, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 400, "invalid_ins")


def list_documents(d: Daemon, doc_id: str):
    """listDocuments, filtered by class and version, and its refusals."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p3 = issuer.auth(INS1), issuer.auth(INS3)
    now = int(time.time())
    checker.case("listDocuments -> 200", DOCS_GET, send("GET", DOCS % INS1, headers=p1), 200,
                 extra=json_is_ascii(lambda b: len(b["documents"]) == 5 and doc_id in {d["id"] for d in b["documents"]}))
    checker.case("listDocuments ?class=BIOLOGIE&allVersions=true -> 200", DOCS_GET,
                 send("GET", DOCS % INS1 + "?class=BIOLOGIE&allVersions=true", headers=p1), 200,
                 extra=json_is_ascii(lambda b: [d["id"] for d in b["documents"]] == [doc_id]))
    checker.case("listDocuments ?class=DOC_ADM (none) -> 200 empty", DOCS_GET,
                 send("GET", DOCS % INS1 + "?class=DOC_ADM&allVersions=false", headers=p1), 200,
                 extra=json_is_ascii(lambda b: b == {"documents": []}))
    checker.case("listDocuments unknown class -> 400 unknown_class", DOCS_GET,
                 send("GET", DOCS % INS1 + "?class=NOPE", headers=p1), 400, "unknown_class")
    checker.case("listDocuments without a dossier -> 404 dossier_not_found", DOCS_GET,
                 send("GET", DOCS % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("listDocuments of another patient -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=p1), 403, "access_denied")
    checker.case("listDocuments invalid INS -> 400 invalid_ins", DOCS_GET,
                 send("GET", DOCS % "18405631234565X", headers=p1), 400, "invalid_ins")
    checker.case("listDocuments expired assertion -> 401 assertion_expired", DOCS_GET,
                 send("GET", DOCS % INS1, headers=auth(issuer.token(INS1, iat=now - 4000, lifetime=3000))),
                 401, "assertion_expired")


def get_document(d: Daemon, doc_id: str, client_doc: str):
    """getDocument, of the document stored over HTTP and of the client's, and its refusals."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    other_key = Ed25519PrivateKey.generate()
    checker.case("getDocument -> 200", DOC_GET, send("GET", DOC % (INS1, doc_id), headers=p1), 200,
                 extra=json_is_ascii(lambda b: b["id"] == doc_id and b["title"] == "Bilan sanguin été"))
    checker.case("getDocument stored by the client -> 200", DOC_GET, send("GET", DOC % (INS1, client_doc), headers=p1), 200,
                 extra=json_is_ascii(lambda b: b["title"] == "Compte rendu été" and b["class"] == "CPT_REND"
                                     and b["careDate"] == "2024-06-01"))
    checker.case("getDocument malformed id -> 400 invalid_identifier", DOC_GET,
                 send("GET", DOC % (INS1, doc_id.upper()), headers=p1), 400, "invalid_identifier")
    checker.case("getDocument unknown id -> 404 document_not_found", DOC_GET,
                 send("GET", DOC % (INS1, UNKNOWN_ID), headers=p1), 404, "document_not_found")
    checker.case("getDocument without a dossier -> 404 dossier_not_found", DOC_GET,
                 send("GET", DOC % (INS3, UNKNOWN_ID), headers=p3), 404, "dossier_not_found")
    checker.case("getDocument of another patient's dossier -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS1, doc_id), headers=p2), 403, "access_denied")
    checker.case("getDocument bad signature -> 401 assertion_bad_signature", DOC_GET,
                 send("GET", DOC % (INS1, doc_id), headers=auth(issuer.sign_claims(issuer.claims(INS1), key=other_key))),
                 401, "assertion_bad_signature")
    checker.case("getDocument invalid INS -> 400 invalid_ins", DOC_GET,
                 send("GET", DOC % (INS_BAD_KEY, doc_id), headers=p1), 400, "invalid_ins")


def get_document_content(d: Daemon, stored: StoredDocument):
    """getDocumentContent: the bytes stored, with the headers that describe them; its refusals."""
    checker, send = d.checker, d.send
    p1, p2, p3 = (d.issuer.auth(i) for i in (INS1, INS2, INS3))
    doc_id, content, metadata = stored.id, stored.content, stored.metadata
    def same_content(reply):
        problems = []
        if reply.body != content:
            problems.append("content differs (%d bytes, expected %d)" % (len(reply.body), len(content)))
        if reply.headers.get("Coffre-Content-SHA256") != hashlib.sha256(content).hexdigest():
            problems.append("Coffre-Content-SHA256 is not the content's SHA-256")
        if reply.headers.get("Coffre-Document-Id") != doc_id:
            problems.append("Coffre-Document-Id is not the document's id")
        if reply.headers.get("Content-Type") != metadata["Content-Type"]:
            problems.append("Content-Type %r is not the stored media type" % reply.headers.get("Content-Type"))
        return problems
    checker.case("getDocumentContent -> 200 with the bytes stored", CONTENT_GET,
                 send("GET", CONTENT % (INS1, doc_id), headers=p1), 200, extra=same_content)
    checker.case("getDocumentContent unknown id -> 404 document_not_found", CONTENT_GET,
                 send("GET", CONTENT % (INS1, UNKNOWN_ID), headers=p1), 404, "document_not_found")
    checker.case("getDocumentContent malformed id -> 400 invalid_identifier", CONTENT_GET,
                 send("GET", CONTENT % (INS1, "not-an-id"), headers=p1), 400, "invalid_identifier")
    checker.case("getDocumentContent without a dossier -> 404 dossier_not_found", CONTENT_GET,
                 send("GET", CONTENT % (INS3, UNKNOWN_ID), headers=p3), 404, "dossier_not_found")
    checker.case("getDocumentContent of another patient's dossier -> 403 access_denied", CONTENT_GET,
                 send("GET", CONTENT % (INS1, doc_id), headers=p2), 403, "access_denied")
    checker.case("getDocumentContent without assertion -> 401 assertion_missing", CONTENT_GET,
                 send("GET", CONTENT % (INS1, doc_id)), 401, "assertion_missing")
    checker.case("getDocumentContent invalid INS -> 400 invalid_ins", CONTENT_GET,
                 send("GET", CONTENT % ("1" * 15, doc_id), headers=p1), 400, "invalid_ins")
