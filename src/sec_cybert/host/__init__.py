"""The host: the pipeline, its config loading, the lifecycle around each stage, and the plan of a
whole run. It builds the registry once and hands it down; nothing below imports from here."""
