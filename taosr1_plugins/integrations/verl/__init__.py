"""verl adapters for the TaoSR1 relevance reward and dynamic sampling (imported only when verl is used)."""
