"""Text in, verdict out: the fanzha fraud classifier. Imports nothing from ``bot``."""
