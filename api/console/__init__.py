"""The operator console: a server-rendered Falcon app over the operator read model.

It reads only through `pipeline.services.operations.Operations` and authenticates operators
through `pipeline.services.operators` (a cookie session, never a tenant's token).
See docs/ARCHITECTURE.md ("The operator console").
"""
