"""Real services for tests: each started on 127.0.0.1, owned by the test run, stopped after."""
