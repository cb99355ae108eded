"""Falcon resources: each responder parses, calls one service method and renders.
See docs/ARCHITECTURE.md ("The HTTP adapter (`api/`)").
"""
