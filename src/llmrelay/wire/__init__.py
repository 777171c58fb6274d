"""Pure wire codecs: each provider's format to and from the canonical types; no I/O here."""
