"""ICU's string search (what .NET's culture-aware ``IndexOf`` runs on Linux), through ctypes on the
machine's libicu: an oracle for which look-alikes the Azure agent would take for ``##vso[``.
``index_of`` is None when libicu is not installed."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from collections.abc import Callable

IndexOf = Callable[[str, str], int]


def _load() -> IndexOf | None:
    name = ctypes.util.find_library("icui18n")
    if not name:
        return None
    lib = ctypes.CDLL(name)
    version = re.search(r"\.so\.(\d+)", name)
    suffix = ""
    if version and hasattr(lib, f"ucol_open_{version[1]}"):
        suffix = f"_{version[1]}"
    open_collator = getattr(lib, f"ucol_open{suffix}")
    open_collator.restype = ctypes.c_void_p
    open_search = getattr(lib, f"usearch_openFromCollator{suffix}")
    open_search.restype = ctypes.c_void_p
    first = getattr(lib, f"usearch_first{suffix}")
    first.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    close = getattr(lib, f"usearch_close{suffix}")
    close.argtypes = [ctypes.c_void_p]
    status = ctypes.c_int(0)
    collator = open_collator(b"", ctypes.byref(status))  # the root locale: what the invariant culture uses
    if status.value > 0:
        return None

    def utf16(text: str) -> tuple[ctypes.Array, int]:
        data = text.encode("utf-16-le")
        return ctypes.create_string_buffer(data, len(data) + 2), len(data) // 2

    def index_of(text: str, pattern: str) -> int:
        status = ctypes.c_int(0)
        (pat, pat_len), (txt, txt_len) = utf16(pattern), utf16(text)
        search = open_search(pat, pat_len, txt, txt_len, ctypes.c_void_p(collator), None, ctypes.byref(status))
        if status.value > 0:
            raise OSError(f"usearch_openFromCollator failed: {status.value}")
        try:
            return first(search, ctypes.byref(status))
        finally:
            close(search)

    return index_of


index_of = _load()
