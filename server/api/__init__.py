"""The Kubernetes API rules ringrun serve follows (pure): Status errors, object rules, patches, selectors, tables,
the served resources and their discovery documents."""
