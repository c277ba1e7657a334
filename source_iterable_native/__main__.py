import signal

# Hold a stop request that arrives while the connector starts; serve() turns it into a graceful stop.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

import asyncio  # noqa: E402
import sys  # noqa: E402

from source_iterable_native import Connector  # noqa: E402

sys.exit(asyncio.run(Connector().serve()))
