"""Discovery: the catalog of live workflow types and instances, and the per-worker Session clients."""
