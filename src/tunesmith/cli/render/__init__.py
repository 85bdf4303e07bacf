"""Rich renderers of each stage's results (tables, lines, progress), one module per stage; only the CLI draws."""
