"""`python -m gateway.cli` runs the command, as it did when the command was a single module."""
from gateway.cli import main

if __name__ == "__main__":   # importing it (tests walk every module) must not run the command
    main()
