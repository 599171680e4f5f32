"""`python -m gateway.cli` runs the command, as it did when the command was a single module."""
from gateway.cli import main

main()
