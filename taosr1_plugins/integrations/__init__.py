

def dpo_pair_writers() -> dict:
    """The datasets DPO pairs are written as, keyed by their entry in the pairs summary (both trainers read them)."""
    from taosr1_plugins.integrations.llamafactory.ranking import write_llamafactory_pairs
    from taosr1_plugins.integrations.openrlhf.pairwise import write_openrlhf_pairs

    return {"llamafactory": write_llamafactory_pairs, "openrlhf": write_openrlhf_pairs}
