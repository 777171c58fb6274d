"""Routing: model alias -> ordered targets, and the router that walks them."""
