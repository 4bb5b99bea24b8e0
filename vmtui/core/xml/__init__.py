"""Domain XML: one typed model (each fact has one XPath; the same object
parses, edits and builds), the overview the screens show, and vmtui's own
records in a domain's <metadata>."""
