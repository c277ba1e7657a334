import asyncio
import sys

from source_iterable_native import Connector

sys.exit(asyncio.run(Connector().serve()))
