"""Policies: one module each, all with the ``Policy`` signature (see :mod:`llmrelay.service`)."""
