"""OpenRLHF integration: data files in the shapes OpenRLHF's trainers read, and its plugin points."""
