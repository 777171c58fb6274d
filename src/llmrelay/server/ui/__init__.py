"""The dashboard at ``/ui``: overview charts, usage over time by key, team, model and tag, rate-limit
headroom, a request log browser and key management.

Behind the master key: a login form exchanges it for a session (a random id in an ``HttpOnly``,
``SameSite=Strict`` cookie, kept hashed in the state store so every worker knows it); every state
change carries the session's CSRF token. Pages are server-rendered HTML with charts drawn as SVG
on the server (:mod:`.charts`): no script at all, so the Content-Security-Policy forbids scripts
outright. Time series come from an in-process ring buffer that samples the metrics
(:mod:`.history`), so the page works without Prometheus; the usage page adds the usage ledger's
totals by the model that answered.

* :mod:`.sessions`: login sessions and CSRF tokens.
* :mod:`.history`: the metrics ring buffer and the recent calls.
* :mod:`.headroom`: the rate-limit headroom view's rows, from the metrics.
* :mod:`.charts`: SVG line charts.
* :mod:`.pages`: the HTML.
* :mod:`.routes`: the endpoints, security headers.
"""
