"""The folded state: the pure fold of events into state, the compacted tables and their files,
and the numbered manifests that commit them. Imports the event log and the stores."""
