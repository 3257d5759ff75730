"""bigmodel's conformance suite over everything this sector registers."""

from bigmodel.testing import conformance_tests

conformance_tests(globals(), plugin="customer_service")
