import asyncio
import gc
import sys

from source_iterable_native import Connector

# Each record is a few short-lived dicts. Collecting the young generation after 20,000 net
# allocations rather than Python's 700 took the collector from 2.6% to 0.3% of the connector's
# CPU in the dense export benchmark (docs/performance.md).
gc.set_threshold(20_000, 10, 10)
sys.exit(asyncio.run(Connector().serve()))
