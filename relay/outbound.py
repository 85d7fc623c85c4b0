"""The relay's own HTTP requests to the outside (the apps' APIs, push services, a
site's /porch-sw.js): one TLS context for all of them, made once per process. Loading
the system's certificate authorities takes ~50 ms, and every client made without one
would do it again."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
