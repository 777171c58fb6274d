"""The response cache: what the ``cache`` policy (:mod:`llmrelay.policies.cache`) is built from.

* :mod:`.settings` the per-alias ``cache:`` config and the store's ``state.cache:`` config;
* :mod:`.key` the exact key: a hash of the normalised canonical request, scoped per tenant;
* :mod:`.control` the caller's ``Cache-Control`` directives;
* :mod:`.entry` what one stored answer looks like (the same bytes in memory, SQLite and Redis);
* :mod:`.semantic`, :mod:`.embedder`, :mod:`.index`, :mod:`.verify` the semantic half;
* :mod:`.stats` per-alias counters, :mod:`.generations` O(1) clearing, :mod:`.warm` warming.

See docs/architecture.md (pipeline order, §3) for where the policy sits and why.
"""
