from tests.bench.conftest import mock_server  # noqa: F401  (the same mock server fixture)
