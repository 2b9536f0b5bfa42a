"""The BEDS test kit for service authors.

Layer: tooling (test kit) (imports the client and, lazily, the node; nothing in beds imports it).

- `FakeBeds`: answers a service's calls from canned replies or callables, without RabbitMQ, in
  the reply and error shapes of the real client (unit tests).
- A pytest plugin (registered as the `beds` entry point under `pytest11`, in beds.testing.plugin)
  with fixtures `beds_node`, `beds_client` and `beds_sync_client`: a real in-process node on the
  test's RabbitMQ over templates from a folder and a datasource the test owns, and `fake_beds`.

See docs/testing.md.
"""

from beds.testing.fake import FakeBeds, FakeCall, FakeSyncBeds
from beds.testing.node import BedsNode, running_node

__all__ = ["BedsNode", "FakeBeds", "FakeCall", "FakeSyncBeds", "running_node"]
