"""Getting papers from arXiv: the API client (fetch by query or by id) and the OAI-PMH harvester (whole sets)."""
