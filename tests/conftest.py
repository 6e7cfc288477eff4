import pytest

from wsg.data import load_synthetic


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory):
    """A small Charades-like synthetic benchmark, generated once per test session."""
    cache = tmp_path_factory.mktemp("wsgdata")
    return load_synthetic("charades", "tiny", cache_dir=cache, num_videos=(60, 20, 20))
