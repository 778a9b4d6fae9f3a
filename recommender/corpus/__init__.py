"""Papers and the paper store: the Paper record, arXiv ids, the SQLite store, snapshot import."""
