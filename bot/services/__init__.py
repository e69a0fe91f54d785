"""Use cases. No telegram imports here: plain values in (ids, text, ``now``), models out."""
