"""Telling applications what changed: the event model, webhook signing, Security Event
Tokens and the delivery transport."""
