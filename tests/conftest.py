import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on a shared 2-core machine: one torch thread each keeps them predictable."""
    torch.set_num_threads(1)
    yield
