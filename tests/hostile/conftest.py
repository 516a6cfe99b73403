"""Hostile input against real components: the proxies' fixtures serve here too."""

from tests.proxy.conftest import http_upstream, make_proxy

__all__ = ["http_upstream", "make_proxy"]
