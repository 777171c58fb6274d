"""Tokens, prices and the cost of a request.

* :mod:`.tokens`: estimates before a call (a calibrated estimate for every provider; the exact
  ``o200k_base`` count for the OpenAI family);
* :mod:`.prices`: each target's :class:`~.prices.Price`, from the config's override or the bundled
  ``genai-prices`` data, resolved once when the pipeline is built;
* :mod:`.cost`: the pure cost of a ``Usage`` at a ``Price``.

The router's ``cheapest`` strategy ranks targets by :func:`.cost.estimated_cost`; the server puts
:func:`.cost.cost` of every answer in ``x-llmrelay-cost`` (unary), in an SSE comment line before
the end (streams) and in the access log. Nothing here imports ``bpe-openai`` or ``genai-prices``
at import time.
"""
