"""NIR export/import with the learning rule attached.

Stable entry points (called by the Lava compiler):

* :func:`neurocredit.nir.export.export` ``(model) -> nir.NIRGraph``
* :func:`neurocredit.nir.export.write` ``(model, path) -> Path`` (atomic)
* :func:`neurocredit.nir.load.load` ``(path, rule=None) -> LoadedModel`` (raises :class:`NIRLoadError`)
* :func:`neurocredit.nir.simulate.simulate` ``(graph, x[T, batch, n], dt=None) -> outputs``

Submodules are imported lazily (``neurocredit.nir`` itself imports nothing heavy).
"""
from neurocredit.nir.errors import NIRLoadError

__all__ = ["NIRLoadError"]
