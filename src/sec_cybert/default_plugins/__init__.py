"""The built-in components, registered through the same hooks and entry points as any plugin.

Each module here is one entry point in the ``sec_cybert`` group (see ``pyproject.toml``), so
``sec-cybert plugins`` shows which built-in provided which component.
"""
