"""trl adapters for the TaoSR1 relevance reward and dynamic sampling (imported only when trl is used)."""
