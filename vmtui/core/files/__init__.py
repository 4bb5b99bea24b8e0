"""Files and YAML that people write: reading user-named files safely,
writing private ones, loading YAML with limits, dumping readable YAML."""
