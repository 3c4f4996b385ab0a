"""The TLS context of every registry client: httpx's own (certifi's CAs, or SSL_CERT_FILE /
SSL_CERT_DIR, a private registry's CA; Go's docker and buildx honour the same variables), whose CA
certificates load when the first TLS connection is made.

Loading them costs ~40 ms, and a release to a local registry (http on loopback) makes no TLS
connection at all: made up front, the client's creation waited for them on every release (issue
#20). A release to a TLS registry loads them beside its start-up (``preload``), so its first
request does not wait either. Unreadable CA settings are one UsageError, raised by the first TLS
connection — through httpx, which passes on what is not a connection error — and by ``preload``'s
caller never: the client's own call raises it again, where it is reported.
"""

from __future__ import annotations

import functools
import os
import ssl
import sys
import threading
from typing import Any

from buildctl.errors import UsageError


class CertificatesOnFirstUse(ssl.SSLContext):
    """``ssl.create_default_context(cafile=..., capath=...)`` as httpx makes it, the CAs loaded by
    the first ``wrap_socket``/``wrap_bio`` (a TLS connection, direct or through a proxy) or by
    ``load_certificates``, once, whichever thread comes first."""

    def __new__(cls, *, cafile: str | None, capath: str | None) -> CertificatesOnFirstUse:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, *, cafile: str | None, capath: str | None) -> None:
        # PROTOCOL_TLS_CLIENT (in __new__) verifies the certificate and the host name
        self._cafile, self._capath = cafile, capath
        self._lock = threading.Lock()
        self._loaded = False
        keylog = os.environ.get("SSLKEYLOGFILE")  # what create_default_context honours too
        if keylog and not sys.flags.ignore_environment:
            self.keylog_filename = keylog

    def load_certificates(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                self.load_verify_locations(cafile=self._cafile, capath=self._capath)
            except (OSError, ssl.SSLError) as exc:  # bad input, not a bug: one line, exit 2
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise UsageError(f"cannot load the CA certificates of SSL_CERT_FILE={os.environ.get('SSL_CERT_FILE', '')} "
                                 f"SSL_CERT_DIR={os.environ.get('SSL_CERT_DIR', '')}: {why}",
                                 hint="point them at a PEM bundle / a folder of PEM certificates, or unset them") from None
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_certificates()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_certificates()
        return super().wrap_bio(*args, **kwargs)


def tls_context() -> CertificatesOnFirstUse:
    """The context for the CA setting of now (clients of one run, and the preload, share it)."""
    with _MAKING:
        return _context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


_MAKING = threading.Lock()  # lru_cache may call its function twice for two threads at once


@functools.lru_cache(maxsize=8)
def _context(cert_file: str | None, cert_dir: str | None) -> CertificatesOnFirstUse:
    if cert_file:  # httpx's order: SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle
        return CertificatesOnFirstUse(cafile=cert_file, capath=None)
    if cert_dir:
        return CertificatesOnFirstUse(cafile=None, capath=cert_dir)
    import certifi

    return CertificatesOnFirstUse(cafile=certifi.where(), capath=None)


def preload() -> None:
    """Load the CAs on a thread of their own (mostly in OpenSSL, without the GIL), for a run that
    will talk TLS. Called once the modules are loaded: two threads importing one package can see
    it half initialised."""
    threading.Thread(target=_try_load, name="buildctl-tls", daemon=True).start()


def _try_load() -> None:
    try:
        tls_context().load_certificates()
    except Exception:  # a bad SSL_CERT_FILE: the client's own TLS connection raises it again, where it is reported
        pass
