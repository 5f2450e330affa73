"""Intake's pure domain: conversions from councils' shapes to canonical events (no I/O but files).

- :mod:`.results`: what a conversion yields (canonical events, contacts, rejections).
- :mod:`.case_ids`: opaque case ids and deterministic event ids.
- :mod:`.mapping`: declarative per-source mappings loaded from YAML.
- :mod:`.generic_csv`: CSV files through the same mappings.
- :mod:`.sen2`: the DfE SEN2 person-level return (XML and COLLECT CSV export).
- :mod:`.timeliness`: the DfE 20-week figures computed from an SEN2 return.
- :mod:`.sen2_synthetic`: synthetic SEN2 returns for tests and benchmarks.
"""
