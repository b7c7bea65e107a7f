import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local 2-CPU Ray cluster per test module, without the dashboard."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
