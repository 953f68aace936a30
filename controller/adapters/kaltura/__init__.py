"""The Kaltura adapter: ``session`` (the one seam: client, KS, pacing, retries, error
translation) and ``read`` (observation queries: the createdAt-cursor walk, batched flavors)."""
