"""Where results go: run folders with PNG and TensorBoard sinks, atomic files, Graphviz.
Only this package writes files."""
