"""Real e-commerce data bundled with tritonrec (see PROVENANCE.md)."""
