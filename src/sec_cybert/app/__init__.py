"""The application floor under ``cli``: the demo and the CLI's config input."""
