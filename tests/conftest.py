import pytest
import torch

from wsg.data import load_synthetic


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory):
    """A small Charades-like synthetic benchmark, generated once per test session."""
    cache = tmp_path_factory.mktemp("wsgdata")
    return load_synthetic("charades", "tiny", cache_dir=cache, num_videos=(60, 20, 20))


@pytest.fixture(scope="module")
def one_thread():
    """One CPU thread for a module of tiny-tensor tests: faster than several, and robust on a busy
    2-core machine (OpenMP contention). Model test files use it with ``pytest.mark.usefixtures``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
