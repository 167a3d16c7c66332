"""UCX Spark: an open utility customer-experience lakehouse on Spark and Delta Lake."""

__version__ = "0.1.0"
