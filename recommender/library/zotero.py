"""Zotero's CSL JSON and Zotero RDF exports (RDF/XML read with rdflib; collections become tags)."""
from __future__ import annotations

import json
import re

from .entries import Entry, FormatError, make_entry, short, too_many

MAX_JSON_DEPTH = 20
_CSL_MARKED = ("URL", "DOI", "number", "note", "container-title", "archive_location", "archive", "publisher",
               "source", "id")


def parse_csl_json(text: str, max_entries: int) -> list[Entry]:
    if not _depth_ok(text):  # before json.loads, whose recursion a deep file could exhaust
        raise FormatError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels: not a CSL JSON export")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not valid JSON ({short(str(exc), 100)}): export CSL JSON again") from None
    if isinstance(data, dict):
        data = data.get("items", [data]) if isinstance(data.get("items", [data]), list) else [data]
    if not isinstance(data, list):
        raise FormatError("CSL JSON is a list of items; this JSON is not")
    if len(data) > max_entries:
        raise too_many(len(data), max_entries)
    return [_csl_entry(i, item) for i, item in enumerate(data, 1)]


def _depth_ok(text: str) -> bool:
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _csl_entry(i: int, item) -> Entry:
    if not isinstance(item, dict):
        return Entry(f"item {i}", error=f"item {i} is not a JSON object")
    key = item.get("citation-key") or item.get("id")
    key = key if isinstance(key, str) else str(key) if isinstance(key, int) and not isinstance(key, bool) else None
    strings = {k: v for k, v in item.items() if isinstance(k, str) and isinstance(v, str)}
    explicit = [(k, strings[k]) for k in ("arxiv", "arxiv_id") if k in strings]
    return make_entry(key or f"item {i}", strings.get("title", ""), explicit,
                  [(k, strings[k]) for k in _CSL_MARKED if k in strings])


_Z = "http://www.zotero.org/namespaces/export#"
_DC = "http://purl.org/dc/elements/1.1/"
_DCTERMS = "http://purl.org/dc/terms/"
_RDF_VALUE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"
_SKIP_PREDICATES = {_DCTERMS + "abstract", _DC + "subject", _DCTERMS + "hasPart", _Z + "itemType"}


def parse_zotero_rdf(text: str, max_entries: int) -> list[Entry]:
    import rdflib
    from rdflib import Literal, Namespace, URIRef

    if re.search(r"<!(?:DOCTYPE|ENTITY)", text, re.IGNORECASE):
        # Zotero never writes one; entity expansion ("billion laughs") is a way to exhaust memory.
        raise FormatError("this RDF declares a DOCTYPE or entities, which Zotero RDF never does: refused")
    graph = rdflib.Graph()
    try:
        graph.parse(data=text, format="xml")
    except Exception as exc:  # noqa: BLE001 -- rdflib and SAX raise many types for a bad file
        raise FormatError(f"not a readable RDF/XML file ({short(str(exc), 120)}): export \"Zotero RDF\" "
                          "again") from None
    z, dc, dcterms = Namespace(_Z), Namespace(_DC), Namespace(_DCTERMS)
    items = [s for s, kind in graph.subject_objects(z.itemType)
             if str(kind) not in ("attachment", "note")]
    if not items:
        raise FormatError("no Zotero items in this RDF file (Zotero marks each with z:itemType): export "
                          "\"Zotero RDF\" from Zotero")
    if len(items) > max_entries:
        raise too_many(len(items), max_entries)
    collections: dict = {}
    for col in graph.subjects(rdflib.RDF.type, z.Collection):
        name = str(graph.value(col, dc.title) or "")
        for part in graph.objects(col, dcterms.hasPart):
            collections.setdefault(part, []).append(name)
    out = []
    for i, item in enumerate(sorted(items, key=str), 1):
        texts = [("about", str(item))] if isinstance(item, URIRef) else []
        for pred, obj in graph.predicate_objects(item):
            if str(pred) in _SKIP_PREDICATES:
                continue
            if isinstance(obj, Literal):
                texts.append((pred.split("/")[-1].split("#")[-1], str(obj)))
            else:
                value = graph.value(obj, URIRef(_RDF_VALUE))
                if value is not None:
                    texts.append((pred.split("/")[-1].split("#")[-1], str(value)))
        key = str(item) if isinstance(item, URIRef) else f"item {i}"
        out.append(make_entry(key, str(graph.value(item, dc.title) or ""), [], texts, collections.get(item, ())))
    return out


