import pytest
import torch

try:  # Lava sets multiprocessing's start method when first imported, and fails if anything
    # (tqdm's lock) fixed it before: import it first, so that test order does not matter
    import lava.magma.core.process.process  # noqa: F401
except ImportError:  # no Lava here: its tests are skipped or expect the one-line refusal
    pass


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on a shared 2-core machine: one torch thread each keeps them predictable."""
    torch.set_num_threads(1)
    yield
