"""What curators run besides `serve`: starting, checking and maintaining a curation.

A starter curation (`scaffold`), the curator's lint (`curator_lint`), the tool-list budget
(`budget`), drift against a lock (`drift`, `lock`), contract fixtures (`fixtures`), MCP host
registration (`install`) and the registry manifest (`manifest`).
"""
