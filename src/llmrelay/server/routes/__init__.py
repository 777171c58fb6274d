"""HTTP routes: each module is one API surface; model routes are :class:`~..handler.Face` values."""
