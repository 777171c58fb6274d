"""Budgets: spend limits per key, user, team or tag over a daily, monthly or total window.

:mod:`~llmrelay.budgets.rules` (config, windows, which budgets a call counts against),
:mod:`~llmrelay.budgets.decide` (the pure admission decision), :mod:`~llmrelay.budgets.store`
(atomic reserve / settle / release: memory, SQLite, PostgreSQL) and the request-scope policy
:mod:`llmrelay.policies.budget`.
"""
