"""Azure: see finops_pipeline/clouds/__init__.py for what each file of this folder does."""
