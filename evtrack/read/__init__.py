"""The read side: a store root opened for a process (``backend``), the reader that folds the
inbox tail on top of a manifest's tables, and the entity views built from folded state."""
