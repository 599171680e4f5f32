"""ERP format adapters: pure functions between ERP-native files and the domain model.

Every adapter, the built-in ones too, is declared in pyproject.toml under the entry-point group
`directlink.adapters`; registry.py loads them.
"""
