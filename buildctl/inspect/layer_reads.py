"""Reading one layer's table, for verification and the prefetch alike: the layer cache first,
then a table shared through the registry (shared_tables.py), else the bytes themselves."""

from __future__ import annotations

from collections.abc import Callable

from buildctl.inspect.descriptors import Descriptor
from buildctl.inspect.image_fs import LayerTable
from buildctl.inspect.layers import LayerCache, ScanLimits, scan_layer
from buildctl.inspect.shared_tables import SharedTables
from buildctl.references import ImageReference
from buildctl.registry.bounds import Deadline
from buildctl.registry.client import RegistryClient


def read_layer(client: RegistryClient, ref: ImageReference, layer: Descriptor, *, cache: LayerCache,
               limits: ScanLimits, deadline: Deadline, on_read: Callable[[], None] | None = None,
               shared: SharedTables | None = None, homes: tuple[str, ...] | None = None,
               on_shared: Callable[[], None] | None = None) -> LayerTable:
    """The table of ``layer`` (of ``ref``'s repository): from ``cache``, else the table shared in
    each repository of ``homes`` (default: ``ref``'s own) when every one has it, else streamed and
    scanned, its bytes checked against the digest and size (verification and prefetch share this),
    then shared there. ``on_read`` runs when this call, not a cache, read it; ``on_shared`` when a
    shared table stood for the read."""
    digest, size, what = layer.digest, layer.size, f"layer {layer.digest}"
    # Keyed by size too: a table read for a descriptor of the true size must not vouch for one
    # that claims another (the read checks the size as the blob arrives).
    key = digest if size is None else f"{digest}/{size}"
    places = homes or (f"{ref.registry}/{ref.repository}",)
    if shared is not None and not cache.has(key):
        found = [shared.get(place, digest, size) for place in places]
        if found and all(t is not None for t in found):
            shared.took(places, digest, size)
            if on_shared is not None:
                on_shared()
            return found[0]  # type: ignore[return-value]  # checked just above
    read = []

    def load() -> LayerTable:
        table = client.stream_blob(ref, digest, lambda body: scan_layer(body, limits=limits, deadline=deadline,
                                                                        what=what), size=size, deadline=deadline)
        read.append(table)
        if on_read is not None:
            on_read()
        return table

    table = cache.get(key, load, deadline=deadline)
    if shared is not None and read:
        for place in places:
            shared.publish(place, digest, size, table)
    return table
