"""P3B tests run single-threaded: tiny tensors on a shared 2-core machine
are much slower with OpenMP threads competing for the cores, and a resumed
run must use the same thread count as the run it is compared with."""
import pytest
import torch


@pytest.fixture(autouse=True, scope='session')
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
