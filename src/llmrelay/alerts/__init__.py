"""Alerts: rules over the gateway's own metrics, evaluated in process, delivered to webhooks.

* :mod:`.rules`: the config (``alerts:``) and the pure evaluation of a rule over one window.
* :mod:`.webhooks`: payloads (generic JSON, Slack-compatible), HMAC-SHA256 signing, delivery.
* :mod:`.evaluator`: the loop the server runs; one firing and one resolved message per episode
  across workers and replicas (a lease in the state store).
* :mod:`.prometheus_rules`: the same rules as a Prometheus rules file for Alertmanager users.
"""
