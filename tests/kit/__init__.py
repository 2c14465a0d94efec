"""Test kit: loopback venues, hand-made store batches, catalogs and strategies for the tests (not shipped)."""
