"""Build arXiv OAI-PMH 2.0 ``ListRecords`` responses from real records, for the harvest tests.

The records are real arXiv metadata in the Kaggle snapshot format (../shared/arxiv, read at test time,
never copied here). Each is written as arXiv's OAI-PMH service writes it: an OAI-PMH 2.0 envelope
(http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd) whose ``<metadata>`` holds an ``arXiv``
(http://arxiv.org/OAI/arXiv.xsd) or ``arXivRaw`` (http://arxiv.org/OAI/arXivRaw.xsd) element, with the
schemas' element order. The XML is built with lxml, so every text is escaped as a server would.
"""
from __future__ import annotations

import email.utils
import json
from pathlib import Path

from lxml import etree

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
META_NS = {"arXiv": "http://arxiv.org/OAI/arXiv/", "arXivRaw": "http://arxiv.org/OAI/arXivRaw/"}
BASE = "https://oaipmh.arxiv.org/oai"
# arXiv's physics group: its archives are sets ``physics:<archive>``
PHYSICS = {"astro-ph", "cond-mat", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nlin", "nucl-ex",
           "nucl-th", "physics", "quant-ph"}


def load_records(path: Path) -> list[dict]:
    """Kaggle-format records, one JSON object a line."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def set_spec(record: dict) -> str:
    """The OAI set of a record's primary category: ``cs``, ``math``, ``physics:hep-th``..."""
    archive = (record.get("categories") or "cs").split()[0].split(".")[0]
    return f"physics:{archive}" if archive in PHYSICS else archive


def _iso(rfc2822: str) -> str:
    return email.utils.parsedate_to_datetime(rfc2822).date().isoformat()


def _sub(parent, ns: str, tag: str, text: str | None = None, **attrs):
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrs)
    if text is not None:
        element.text = text
    return element


def _optional(parent, ns: str, record: dict, key: str) -> None:
    if record.get(key):
        _sub(parent, ns, key, record[key])


def arxiv_metadata(record: dict):
    """The ``<arXiv>`` element (format ``arXiv``): parsed authors, created and (after v1) updated dates."""
    ns = META_NS["arXiv"]
    root = etree.Element(f"{{{ns}}}arXiv", nsmap={None: ns, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{ns} http://arxiv.org/OAI/arXiv.xsd")
    versions = record.get("versions") or []
    _sub(root, ns, "id", record["id"])
    _sub(root, ns, "created", _iso(versions[0]["created"]) if versions else record["update_date"])
    if len(versions) > 1:
        _sub(root, ns, "updated", _iso(versions[-1]["created"]))
    authors = _sub(root, ns, "authors")
    for parts in record.get("authors_parsed") or []:
        author = _sub(authors, ns, "author")
        last, first, suffix = (list(parts) + ["", "", ""])[:3]
        _sub(author, ns, "keyname", last)
        if first:
            _sub(author, ns, "forenames", first)
        if suffix:
            _sub(author, ns, "suffix", suffix)
    _sub(root, ns, "title", record["title"])
    _sub(root, ns, "categories", record.get("categories") or "")
    for key in ("comments", "report-no", "journal-ref", "doi", "license"):
        _optional(root, ns, record, key)
    _sub(root, ns, "abstract", record.get("abstract") or "")
    return root


def arxivraw_metadata(record: dict):
    """The ``<arXivRaw>`` element: every version with its RFC 2822 date, authors as one string."""
    ns = META_NS["arXivRaw"]
    root = etree.Element(f"{{{ns}}}arXivRaw", nsmap={None: ns, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{ns} http://arxiv.org/OAI/arXivRaw.xsd")
    _sub(root, ns, "id", record["id"])
    _optional(root, ns, record, "submitter")
    for version in record.get("versions") or []:
        element = _sub(root, ns, "version", version=version["version"])
        _sub(element, ns, "date", version["created"])
        _sub(element, ns, "size", "100kb")
        _sub(element, ns, "source_type", "D")
    _sub(root, ns, "title", record["title"])
    _sub(root, ns, "authors", record.get("authors") or "")
    _sub(root, ns, "categories", record.get("categories") or "")
    for key in ("comments", "report-no", "journal-ref", "doi", "license"):
        _optional(root, ns, record, key)
    _sub(root, ns, "abstract", record.get("abstract") or "")
    return root


def header(identifier: str, datestamp: str, specs=(), deleted: bool = False):
    element = etree.Element(f"{{{OAI_NS}}}header", nsmap={None: OAI_NS})
    if deleted:
        element.set("status", "deleted")
    _sub(element, OAI_NS, "identifier", identifier)
    _sub(element, OAI_NS, "datestamp", datestamp)
    for spec in specs:
        _sub(element, OAI_NS, "setSpec", spec)
    return element


def record(rec: dict, fmt: str = "arXiv", metadata=None):
    """One ``<record>``; ``metadata`` replaces the element built from ``rec`` (for broken records)."""
    element = etree.Element(f"{{{OAI_NS}}}record", nsmap={None: OAI_NS})
    element.append(header(f"oai:arXiv.org:{rec['id']}", rec["update_date"], [set_spec(rec)]))
    meta = _sub(element, OAI_NS, "metadata")
    if metadata is not False:
        meta.append(metadata if metadata is not None else
                    (arxiv_metadata if fmt == "arXiv" else arxivraw_metadata)(rec))
    return element


def deleted_record(paper_id: str, datestamp: str, spec: str = "cs"):
    element = etree.Element(f"{{{OAI_NS}}}record", nsmap={None: OAI_NS})
    element.append(header(f"oai:arXiv.org:{paper_id}", datestamp, [spec], deleted=True))
    return element


def _envelope(response_date: str, request: dict):
    root = etree.Element(f"{{{OAI_NS}}}OAI-PMH", nsmap={None: OAI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd")
    _sub(root, OAI_NS, "responseDate", response_date)
    _sub(root, OAI_NS, "request", BASE, **request)
    return root


def _text(root) -> str:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def page(records, *, token: str | None = None, cursor: int = 0, complete: int | None = None,
         response_date: str = "2026-07-02T12:00:00Z", request: dict | None = None, last: bool = False) -> str:
    """A ``ListRecords`` response. ``token`` asks for the next page; ``last`` ends a paged list with an
    empty ``<resumptionToken>`` (as the protocol says); neither: a list of one page."""
    root = _envelope(response_date, request or {"verb": "ListRecords", "metadataPrefix": "arXiv"})
    listing = _sub(root, OAI_NS, "ListRecords")
    for element in records:
        listing.append(element)
    if token is not None or last:
        attrs = {"cursor": str(cursor)}
        if complete is not None:
            attrs["completeListSize"] = str(complete)
        _sub(listing, OAI_NS, "resumptionToken", token, **attrs)
    return _text(root)


def error_page(code: str, message: str = "", response_date: str = "2026-07-02T12:00:00Z") -> str:
    root = _envelope(response_date, {"verb": "ListRecords"})
    _sub(root, OAI_NS, "error", message or None, code=code)
    return _text(root)


def ok(body: str) -> dict:
    """A 200 answer for the fake transport (test_arxiv_api.FakeArxiv)."""
    return {"status_code": 200, "body": body, "headers": {"Content-Type": "text/xml;charset=UTF-8"}}


def record_from_abs(path: Path) -> dict:
    """A Kaggle-shaped record from a real arXiv ``.abs`` file (../shared/arxiv/fixtures/abs): every
    version with its date, so ``arXivRaw`` pages carry real version histories."""
    import re

    text = path.read_text(encoding="utf-8")
    parts = text.split("\\\\")
    head, abstract = parts[1], parts[2]
    fields: dict[str, str] = {}
    versions = []
    key = None
    for line in head.splitlines():
        if line.startswith("arXiv:"):
            fields["id"] = line[len("arXiv:"):].strip()
        elif line.startswith("Date"):
            match = re.match(r"Date(?: \(revised (v[0-9]+)\))?: (.+?GMT)", line)
            versions.append({"version": match.group(1) or "v1", "created": match.group(2)})
        elif line.startswith("  ") and key:
            fields[key] += " " + line.strip()
        elif ": " in line:
            key, value = line.split(": ", 1)
            key = key.lower()
            fields[key] = value.strip()
        else:
            key = None
    names = [n for n in re.split(r",\s*(?:and\s+)?|\s+and\s+", " ".join(fields.get("authors", "").split())) if n]
    return {"id": fields["id"], "submitter": fields.get("from", "").split(" <")[0] or None,
            "authors": fields.get("authors"), "title": fields["title"], "comments": fields.get("comments"),
            "journal-ref": fields.get("journal-ref"), "doi": fields.get("doi"), "report-no": fields.get("report-no"),
            "categories": fields.get("categories"), "license": fields.get("license"), "abstract": abstract,
            "versions": versions, "update_date": _iso(versions[-1]["created"]),
            "authors_parsed": [[n.rsplit(" ", 1)[-1], n.rsplit(" ", 1)[0] if " " in n else "", ""] for n in names]}
