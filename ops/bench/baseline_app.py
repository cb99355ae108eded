"""The benchmark's baseline: bare Falcon endpoints that only parse the request.

`scimflow bench` serves it with the same server configuration as the real API and drives it
with the same requests (the POST bodies of the acknowledgement phase, the existence-check URLs
of the existence phase, session checks of the application API's shape), so "scimflow
acknowledges N% of what the bare framework serves" is measured in the same run on the same
machine.
"""

from __future__ import annotations

import falcon


class ParseOnly:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        resp.status = falcon.HTTP_201
        resp.media = {"id": "baseline", "userName": body.get("userName")}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The filter is read (Falcon decodes the query string then) but not evaluated.
        resp.media = {"totalResults": 0, "Resources": [], "filter": req.get_param("filter")}


class SessionLike:
    def on_get(self, req: falcon.Request, resp: falcon.Response, tenant: str,
               session_id: str) -> None:
        # A JSON body of a session's size, from the path alone.
        resp.content_type = falcon.MEDIA_JSON
        resp.media = {"id": session_id, "status": "active", "reason": None, "revoked_at": None,
                      "user_id": tenant, "user": {"id": tenant, "active": True, "roles": []}}


app = falcon.App()
# IdPs send `application/scim+json`, which Falcon does not parse unless told to.
app.req_options.media_handlers["application/scim+json"] = falcon.media.JSONHandler()
app.add_route("/scim/v2/Users", ParseOnly())
app.add_route("/app/v1/tenants/{tenant}/sessions/{session_id}", SessionLike())
