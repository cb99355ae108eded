"""Falcon resources: each responder parses, calls one service method and renders."""
