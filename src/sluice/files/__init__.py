"""Files (``/v1/files``) and their storage seam (docs/files-and-batches.md)."""
