"""The canonical model in the middle: money, payments, accounts, codes and errors.

Pure Python: nothing here imports lxml, FastAPI, SQLAlchemy or adapter code.
"""
