"""The shared core every stage builds on: records, label schemes, response formats, prompts and file IO."""
