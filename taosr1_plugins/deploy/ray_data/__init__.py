"""`taosr1 score --executor ray`: Ray Data reads the pairs, an actor pool scores them (one model replica per
actor, the scorer chosen by name from the deployment adapters), each batch lands as one atomic part file.

- ``parts.py``: the resumable output (part files, run identity, the final exactly-once assembly); no Ray.
- ``executor.py``: the Ray side (cluster, dataset, actor class); imports Ray only when called.
"""
