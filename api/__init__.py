"""The HTTP adapter: Falcon resources that parse a request, call one service, render a reply.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""
