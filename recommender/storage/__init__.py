"""Files on disk: atomic artifacts and generations, job locks, the integrity check."""
