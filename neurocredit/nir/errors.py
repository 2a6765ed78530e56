"""The one exception the NIR layer raises for a bad file or graph."""
from __future__ import annotations


class NIRLoadError(ValueError):
    """A NIR file or graph neurocredit cannot read, simulate or attach a rule to.

    The message names the culprit: the file, the node (``node 'fc1' (Affine)``), the field
    (``field 'weight'``), the edge (``edge 'fc1' -> 'lif2'``) or the metadata key.
    """


class NIRExportError(ValueError):
    """A model neurocredit refuses to write (non-finite parameters, malformed learning spec).
    ``neurocredit.nir.export.write`` raises it before anything reaches the target path."""
