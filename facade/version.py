"""The version of facade, in one place (the build reads it from here), and the name it is
published under: `facade` on PyPI is an unrelated project, so the distribution is
`facade-mcp`, while `facade` stays the import package and the command."""

__version__ = "0.2.0"
DISTRIBUTION = "facade-mcp"  # pyproject.toml's [project] name; a test keeps them equal
