"""`make bench`: the connector against the Iterable simulator with Iterable's export limits on.

Prints one table per scenario; numbers belong here, never in timed tests."""
