"""Readers and writers of real formats; each validates and fails with a clear error. No ML here."""

from meddl.io.tables import FIRST_DATA_ROW, TABLE_SUFFIXES, read_table, write_table

__all__ = ["FIRST_DATA_ROW", "TABLE_SUFFIXES", "read_table", "write_table"]
