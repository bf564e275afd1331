"""Serve time: the FastMCP server and what stands around it.

Building the server (`server`, `components`), HTTP serving with probes and Host/Origin
checks (`http`), several worker processes on one port (`workers`), inbound auth
(`inbound`), the observers of each call (`observe` for the audit log and rate limit,
`metrics`), hot reload (`reload`), and the one log stream on stderr that all of them,
fastmcp and uvicorn write to (`logs`).
"""
