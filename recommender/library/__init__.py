"""A user's library in and out: BibTeX, CSL JSON, Zotero RDF, id lists (import) and BibTeX, CSL JSON, CSV (export)."""
