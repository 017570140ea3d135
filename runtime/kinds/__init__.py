"""The job kinds (registry.py: one JobKind each, with its parser in a module of this folder) and the frameworks they run on (frameworks.py)."""
