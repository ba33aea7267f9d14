"""tests/mediator/test_compromised_mediator.py, run as the mediator role against the coordinator.

The same test functions, collected again here: `database` and `world` (tests/citus/conftest.py)
are the distributed cluster, so every promise of a compromised mediator (its credential, a live
session secret, arbitrary SQL) is checked where each call is delegated to a worker.
"""

from tests.mediator.test_compromised_mediator import *  # noqa: F403
