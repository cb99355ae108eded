"""The HTTP adapter: Falcon resources that parse a request, call one service, render a reply."""
